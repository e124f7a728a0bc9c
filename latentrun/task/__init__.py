"""The multiplication task: vocabulary, encoding, per-step batches, held-out splits, and the
intermediate results (running sums) that supervision and written chains are made of."""
