"""The GraphQL documents the Shopify connector sends, in one place (API version: graphql.API_VERSION).

Bulk queries (first sync) select the same fields as the paged ones (incremental sync), so one
mapping reads both; nested connections in bulk queries carry no `first:` (bulk pages them itself).
"""
from __future__ import annotations

import re

__all__ = ["CUSTOMER_FIELDS", "PRODUCT_FIELDS", "ORDER_FIELDS", "bulk_query", "paged_query", "paged_cost", "PAGE_SIZES",
           "RUN_BULK", "BULK_STATUS", "SHOP", "point_fields", "PRODUCT_OF_INVENTORY_ITEM", "METAFIELD_NAME"]

# A merchant-named metafield, `namespace.key`: checked again here, as it is written into a query.
METAFIELD_NAME = re.compile(r"([A-Za-z0-9_-]{2,255})\.([A-Za-z0-9_-]{2,64})", re.ASCII)

CUSTOMER_FIELDS = "id email firstName lastName displayName updatedAt emailMarketingConsent { marketingState consentUpdatedAt }"
PRODUCT_FIELDS = "id title handle status productType updatedAt onlineStoreUrl featuredImage { url }"
VARIANT_FIELDS = "id sku price inventoryQuantity"
ORDER_FIELDS = ("id createdAt updatedAt cancelledAt customer { id } "
                "currentTotalPriceSet { shopMoney { amount currencyCode } }")
LINE_FIELDS = "id name quantity product { id } originalUnitPriceSet { shopMoney { amount currencyCode } }"

_FIELDS = {"customers": CUSTOMER_FIELDS, "products": PRODUCT_FIELDS, "orders": ORDER_FIELDS}
# Children: in a bulk query a nested connection has no `first:` and comes back as its own lines.
_BULK_CHILDREN = {
    "customers": "",
    "products": "variants { edges { node { " + VARIANT_FIELDS + " } } }",
    "orders": "lineItems { edges { node { " + LINE_FIELDS + " } } }",
}
# Page sizes keep each query's requested cost under Shopify's 1,000-point single-query ceiling:
# a connection costs 2 + first × (1 + what each node nests); variants/line items beyond 20 are rare
# for the shops we serve and come with the next incremental page or the daily bulk reconciliation.
PAGE_SIZES = {"customers": (100, 0), "products": (25, 20), "orders": (25, 20)}
_PAGED_CHILDREN = {
    "customers": "",
    "products": "variants(first: 20) { nodes { " + VARIANT_FIELDS + " } }",
    "orders": "lineItems(first: 20) { nodes { " + LINE_FIELDS + " } }",
}


def paged_cost(resource: str) -> int:
    """The requested cost Shopify will compute for one page of `resource` (the client waits for it)."""
    first, children = PAGE_SIZES[resource]
    return 2 + first * (1 + (2 + children if children else 0))


def point_fields(balance_field: str, expiry_field: str = "") -> str:
    """The customer selections reading points from metafields the merchant named (aliased, so
    `mapping.customer` finds `pointsBalance` and `pointsExpireAt`); "" for none. ValueError for a bad name."""
    selections = []
    for alias, name in (("pointsBalance", balance_field), ("pointsExpireAt", expiry_field)):
        if not name:
            continue
        match = METAFIELD_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not a metafield namespace.key: {name[:80]!r}")
        selections.append(f'{alias}: metafield(namespace: "{match[1]}", key: "{match[2]}") {{ value }}')
    return " ".join(selections)


def _fields(resource: str, extra: str) -> str:
    return f"{_FIELDS[resource]} {extra}".strip() if resource == "customers" and extra else _FIELDS[resource]


def bulk_query(resource: str, search: str = "", extra_fields: str = "") -> str:
    """The inner query of a bulk operation over one resource (children as flattened lines).

    `search` is Shopify search syntax, e.g. `created_at:>='2025-12-01T00:00:00Z'`; built by the
    connector from datetimes only, never from outside input.
    """
    argument = f"(query: {_quoted(search)})" if search else ""
    return f"{{ {resource}{argument} {{ edges {{ node {{ {_fields(resource, extra_fields)} {_BULK_CHILDREN[resource]} }} }} }} }}"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def paged_query(resource: str, extra_fields: str = "") -> str:
    """One page of a resource matching `$search`, oldest change first (incremental sync)."""
    return (f"query($after: String, $search: String) {{ {resource}(first: {PAGE_SIZES[resource][0]}, after: $after, query: $search, "
            f"sortKey: UPDATED_AT) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {_fields(resource, extra_fields)} "
            f"{_PAGED_CHILDREN[resource]} }} }} }}")


RUN_BULK = """mutation($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
    bulkOperation { id status }
    userErrors { field message }
  }
}"""

BULK_STATUS = """query($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url partialDataUrl } }
}"""

SHOP = """{ shop { id name myshopifyDomain email currencyCode ianaTimezone primaryDomain { url }
  billingAddress { zip province city address1 address2 } } }"""

# The product an inventory level belongs to, as it is now (inventory_levels/update names only the item).
PRODUCT_OF_INVENTORY_ITEM = ("query($id: ID!) { inventoryItem(id: $id) { id variant { product { " + PRODUCT_FIELDS +
                             " variants(first: 20) { nodes { " + VARIANT_FIELDS + " } } } } } }")
