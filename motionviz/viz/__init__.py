"""Plotly figures of motions (skeleton views, grids, trajectories)."""
