"""Deep Q-learning for Battleship: the agent, its trainer, evaluation and the training actor."""
