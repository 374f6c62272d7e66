"""Files in and out: atomic writers and output checks, BVH (read, to Motion, write), foot-contact clean-up."""
