from mpp_chassis.alembic_env import run
from mpp_payment.adapters.tables import metadata

run(metadata)
