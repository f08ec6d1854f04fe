"""The effects actor: timed buffs and debuffs that expire with attribution as turn steps end."""
