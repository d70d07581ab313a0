from recognizer.training.harvest.harvester import *  # noqa: F401,F403
from recognizer.training.harvest.harvester import SamplerStats, __all__  # noqa: F401
