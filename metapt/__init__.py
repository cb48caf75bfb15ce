"""metapt: meta-learning to improve pre-training (Raghu et al., NeurIPS 2021), as a reproducible pipeline."""

__version__ = "0.1.0"
