"""The API tests' farm of their own (``tests.integration.api.stack``)."""

from tests.integration.api.stack import farm

__all__ = ["farm"]
