"""The hello function: answers with a greeting from its environment."""

import os


def handler(event, context):
    return {"statusCode": 200, "body": os.environ.get("GREETING", "hello")}
