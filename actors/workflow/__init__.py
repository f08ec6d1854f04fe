"""The workflow actor (shadow mode): one entity per ticket; it observes and proposes, never acts."""
