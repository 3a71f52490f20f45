"""Delivery channels: each delivers one rendered message and knows nothing else."""
