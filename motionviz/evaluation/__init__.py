"""Evaluation protocols: generative quality against real data, augmentation, correctness control, movement
dynamics, and the speed benchmark."""
