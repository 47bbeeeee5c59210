"""The configuration of `cse fit` before anything is built: the shipped recipes, config files read strictly, and
the checks of the Trainer's and callbacks' settings.
"""
