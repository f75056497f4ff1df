"""Training: the embedded base model (VAE, then UNet) and, later, adapters; one readable loop per stage."""
