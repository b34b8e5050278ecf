"""Test data with factory-boy, made through the real services (a factory that wrote the rows
itself would skip what the services do). Shoppers."""

from __future__ import annotations

import uuid

import factory
from django.contrib.auth import get_user_model


class ShopperFactory(factory.django.DjangoModelFactory):
    """A shopper made by ``create_user`` (a hashed password)."""

    class Meta:
        model = get_user_model()

    username = factory.LazyFunction(lambda: f"shopper-{uuid.uuid4().hex[:10]}")
    password = "pw-for-tests"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, **kwargs)
