from mpp_chassis.alembic_env import run
from mpp_rating.adapters.tables import metadata

run(metadata)
