"""Realistic, reproducible demo data: `generate_demo(engine, size=..., seed=...)` fills an empty CRM."""
from crm.demo.generate import generate_demo
from crm.demo.people import DEMO_LOGINS, DEMO_PASSWORD
from crm.demo.sizes import SIZES, DemoSize

__all__ = ["DEMO_LOGINS", "DEMO_PASSWORD", "SIZES", "DemoSize", "generate_demo"]
