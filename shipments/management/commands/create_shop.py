"""python manage.py create_shop NAME [--json]: a shop and its first API key, shown once."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shipments.services import shop_api_key_create, shop_create


class Command(BaseCommand):
    help = "Create a shop and print its API key (shown once, stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        shop = shop_create(name=options["name"])
        _, key = shop_api_key_create(shop=shop)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"shop_id": shop.pk, "slug": shop.slug, "name": shop.name, "api_key": key}
                )
            )
            return
        self.stdout.write(f"shop {shop.name} (id {shop.pk}, slug {shop.slug})")
        self.stdout.write(f"API key (shown once, store it now): {key}")
        self.stdout.write(f"use it as:  Authorization: Api-Key {key}")
