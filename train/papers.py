"""The papers behind the modules, by title and arXiv id (cited in docstrings, the registry and the docs)."""

DEEPSQUARE = (
    "DeepSquare: Boosting the Learning Power of Deep Convolutional Neural Networks with Elementwise Square "
    "Operators (arXiv:1906.04979)"
)
DSOP = "Detachable Second-order Pooling: Towards High Performance First-order Networks (arXiv:2006.00809)"
ISQRT_COV = (
    "Towards Faster Training of Global Covariance Pooling Networks by Iterative Matrix Square Root "
    "Normalization (arXiv:1712.01034)"
)
SE = "Squeeze-and-Excitation Networks (arXiv:1709.01507)"
SE_VARIANTS = "Variations of Squeeze and Excitation networks (arXiv:2304.06502)"
GEM = "Fine-tuning CNN Image Retrieval with No Human Annotation (arXiv:1711.02512)"
