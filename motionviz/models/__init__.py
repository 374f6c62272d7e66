"""One file per model family: its Config dataclass, nn.Modules and losses (diffusion, diffusion_fast, vae, aegan,
recognition). Generators, training and evaluation of each family live in the layers above."""
