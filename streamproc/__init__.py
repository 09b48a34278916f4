"""streamproc: automated model retraining triggers on Kafka.

monitor performance -> check trigger conditions -> retrain -> gate -> deploy -> resume monitoring
"""

__version__ = "0.1.0"

from streamproc.core.exceptions import StreamprocError

__all__ = ["StreamprocError", "__version__"]
