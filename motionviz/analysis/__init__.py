"""Clinical joint angles, motion metrics and the correct-vs-incorrect difference analysis (DTW, normal ranges)."""
