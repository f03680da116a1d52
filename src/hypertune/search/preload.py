"""What each worker of a Ray that hypertune starts does before it takes work.

Ray imports this module in every worker as it starts (`preload_python_modules`, see
:mod:`hypertune.search.cluster`): torch, Ray Tune and the trainable, then torch's one-time
costs (:func:`hypertune.trial.warm_up`), so a trial's actor that starts in such a worker trains
at once.
"""

from hypertune.search import run  # noqa: F401  (torch, Ray Tune and the trainable)
from hypertune.trial import warm_up

warm_up()
