"""The configuration of `cse fit` before anything is built: the shipped recipes, config files read strictly, the
checks of the Trainer's and callbacks' settings, and the accelerator and precision against the hardware at hand.
"""
