"""A training run's folder (`runs/NAME/version_N/`): its layout, its checkpoint files read safely, resuming it, and
reading a finished run for its model card.
"""
