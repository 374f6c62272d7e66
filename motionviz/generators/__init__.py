"""One Generator per model family behind load_generator (registry), the Request type, text encoders and
text matching, latent interpolation, inpainting and joint up-sampling pipelines."""
