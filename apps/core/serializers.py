"""The base of every API input serializer: a field the API does not know is refused (400
``unknown_field``) rather than silently dropped, so a typo or a probe never passes as valid."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from .exceptions import UNKNOWN_FIELD


class StrictInputSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code=UNKNOWN_FIELD
                )
        return super().to_internal_value(data)
