"""Training: the one training loop (budget, resume, torchrun) and the TRAINERS table of model families."""
