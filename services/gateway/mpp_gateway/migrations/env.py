from mpp_chassis.alembic_env import run
from mpp_gateway.adapters.tables import metadata

run(metadata)
