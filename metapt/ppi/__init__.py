"""The PPI domain: multitask pre-training of a GIN on protein ego-networks (Hu et al. 2020 bio data)."""
