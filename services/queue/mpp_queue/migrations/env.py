from mpp_chassis.alembic_env import run
from mpp_queue.adapters.tables import metadata

run(metadata)
