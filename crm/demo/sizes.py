"""How many rows each demo size aims for."""
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSize:
    """Target row counts for one size; the generator lands within a few per cent of each."""
    name: str
    contacts: int
    companies: int
    deals: int
    activities: int
    orders: int
    events: int  # behaviour events
    tickets: int
    surveys: int
    teams: int
    reps_per_team: int
    pool: int  # distinct Faker values drawn per locale and field; rows sample from these pools


SIZES: dict[str, DemoSize] = {
    "small": DemoSize("small", contacts=2_000, companies=200, deals=1_000, activities=10_000, orders=2_000,
                      events=3_000, tickets=200, surveys=250, teams=3, reps_per_team=5, pool=300),
    "medium": DemoSize("medium", contacts=50_000, companies=5_000, deals=25_000, activities=250_000, orders=50_000,
                       events=75_000, tickets=5_000, surveys=6_000, teams=8, reps_per_team=5, pool=1_500),
    "large": DemoSize("large", contacts=1_000_000, companies=100_000, deals=500_000, activities=5_000_000,
                      orders=1_000_000, events=1_500_000, tickets=100_000, surveys=120_000, teams=20, reps_per_team=5,
                      pool=3_000),
}
