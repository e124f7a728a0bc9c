"""Models for the multiplication task: shared layers, the transformer with 0..N latent positions
(registered as `latent_transformer`, and with no latents as `simple_transformer`), FLOP counting,
and the torch-free config rules that span the models' keys. `latentrun.config.components` imports
`latent`, which registers the models; this top level imports nothing, so the rules load without torch.
"""
