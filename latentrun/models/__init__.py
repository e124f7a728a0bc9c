"""Models for the multiplication task: shared layers, the transformer with 0..N latent positions
(registered as `latent_transformer`, and with no latents as `simple_transformer`), the transformer
that writes a chain of intermediate results (`chain_transformer`), FLOP counting, and the torch-free
config rules that span the models' keys. `latentrun.config.components` imports `latent` and `chain`,
which register the models; this top level imports nothing, so the rules load without torch.
"""
