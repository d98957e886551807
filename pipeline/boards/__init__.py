"""Real boards in the loop: reach a profile's boards over SSH, say what each has, run a bundle there."""
