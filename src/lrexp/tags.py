"""MLflow tag names that training writes and ``lrexp-compare`` reads, kept free of imports so
both sides can share them without loading the other's libraries."""

#: a run whose data module gives no order digest carries this tag; its value says why
ORDER_UNKNOWN_TAG = "order_unknown"
