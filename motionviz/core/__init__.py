"""The vocabulary every other layer speaks: skeletons and retargeting, the Motion container, repetitions,
movement dynamics, the diffusion samplers, the checkpoint format and the user-facing errors.  Imports no
other part of motionviz."""
