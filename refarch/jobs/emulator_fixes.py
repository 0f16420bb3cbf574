"""Response fixes on the embedded AWS (moto) for the gaps the real AWS provider trips on.

Each fix is the smallest change that makes moto answer as AWS does for one request the real
hashicorp/aws 5.x provider sends; each has a test showing the gap and the fix
(tests/integration/test_emulator_fixes.py) and is listed in the README. They wrap moto's WSGI
application, so moto itself is not changed and a fix is dropped once moto closes the gap.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["FIXES", "EmulatorFixes"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

FIXES = {
    "cloudtrail-short-target": "CloudTrail: the short X-Amz-Target `CloudTrail_20131101.<Op>` of "
    "newer SDKs is routed as the long `com.amazonaws.cloudtrail.v20131101.…` form (moto: 404)",
    "ecs-network-configuration": "ECS: an empty `networkConfiguration` (a service without awsvpc) "
    "is left out of service responses (the provider panics on it)",
    "ecs-az-rebalancing": "ECS: `availabilityZoneRebalancing` sent on CreateService/UpdateService "
    "is returned by DescribeServices (moto drops it: the second plan is never clean)",
    "ec2-root-volume-size": "EC2: RunInstances with a block device mapping that names neither a "
    "size nor a snapshot takes the image's size (8 GiB) as AWS does (moto: MissingParameter)",
    "ec2-launch-template-tags": "EC2: the launch template's own tags (top-level TagSpecification, "
    "type launch-template) are not returned inside its LaunchTemplateData (moto copies them "
    "there: the second plan wants to remove them)",
    "iam-service-specific-credentials": "IAM: ListServiceSpecificCredentials answers an empty list "
    "(moto: unimplemented; destroying a user retries for about 20 minutes)",
    "rds-scaling-configuration": "RDS: a provisioned cluster's empty `ScalingConfigurationInfo` "
    "(AWS sends it for Serverless v1 only) is left out (the provider reads it as a "
    "scaling_configuration block: the second plan is never clean)",
    "cloudfront-acm-certificate": "CloudFront: a viewer certificate with an ACM certificate says "
    "`CloudFrontDefaultCertificate` false and `CertificateSource` acm, as AWS does (moto says "
    "true and cloudfront: the second plan is never clean)",
}

CLOUDTRAIL_SHORT = "CloudTrail_20131101."
CLOUDTRAIL_LONG = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
ECS_PREFIX = "AmazonEC2ContainerServiceV20141113."
ECS_SERVICE_ACTIONS = ("CreateService", "UpdateService", "DescribeServices", "DeleteService")
DEFAULT_ROOT_VOLUME_GIB = "8"
DEFAULT_REBALANCING = "DISABLED"  # AWS's value for a service that never set it
MAX_BODY = 16 * 1024 * 1024
# One <item> of a tagSpecificationSet for the template itself (its tagSet holds only items).
LAUNCH_TEMPLATE_TAGS = re.compile(
    rb"<item><resourceType>launch-template</resourceType><tagSet>(?:(?!</tagSet>).)*</tagSet></item>", re.S
)
EMPTY_SCALING_INFO = re.compile(
    rb"<ScalingConfigurationInfo\s*/>|<ScalingConfigurationInfo>\s*</ScalingConfigurationInfo>"
)
VIEWER_CERTIFICATE = re.compile(
    rb"<ViewerCertificate>(?:(?!</ViewerCertificate>).)*</ViewerCertificate>", re.S
)
ACM_ARN = re.compile(rb"<ACMCertificateArn>([^<]+)</ACMCertificateArn>")
IAM_EMPTY_CREDENTIALS = (
    '<ListServiceSpecificCredentialsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    "<ListServiceSpecificCredentialsResult><ServiceSpecificCredentials/>"
    "</ListServiceSpecificCredentialsResult>"
    "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
    "</ListServiceSpecificCredentialsResponse>"
)


class EmulatorFixes:
    """A WSGI wrapper of moto's application applying FIXES to the requests they concern;
    every other request passes through untouched."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._rebalancing: dict[str, str] = {}  # ECS service ARN -> what was last sent
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith(CLOUDTRAIL_SHORT):
            environ["HTTP_X_AMZ_TARGET"] = CLOUDTRAIL_LONG + target[len(CLOUDTRAIL_SHORT) :]
            return self.app(environ, start_response)
        if target.startswith(ECS_PREFIX) and target[len(ECS_PREFIX) :] in ECS_SERVICE_ACTIONS:
            return self._ecs(environ, start_response, target[len(ECS_PREFIX) :])
        service = _signing_service(environ)
        if service in ("rds", "cloudfront"):
            status, headers, answer = _call(self.app, environ)
            if service == "rds":
                answer = EMPTY_SCALING_INFO.sub(b"", answer)
            else:
                answer = VIEWER_CERTIFICATE.sub(_acm_viewer_certificate, answer)
            return _send(start_response, status, headers, answer)
        if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
            body = _read_body(environ)
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            action = dict(form).get("Action")
            if action == "ListServiceSpecificCredentials" and _signing_service(environ) == "iam":
                text = IAM_EMPTY_CREDENTIALS.format(request_id=uuid.uuid4())
                return _respond(start_response, "text/xml", text)
            if action == "DescribeLaunchTemplateVersions":
                status, headers, answer = _call(self.app, environ)
                answer = LAUNCH_TEMPLATE_TAGS.sub(b"", answer)
                return _send(start_response, status, headers, answer)
            if action == "RunInstances":
                form = _with_root_volume_size(form)
                _set_body(environ, urlencode(form).encode())
        return self.app(environ, start_response)

    def _ecs(
        self, environ: dict[str, Any], start_response: Callable[..., Any], action: str
    ) -> Iterable[bytes]:
        request = _json(_read_body(environ))
        sent = request.get("availabilityZoneRebalancing") if isinstance(request, dict) else None
        status, headers, body = _call(self.app, environ)
        document = _json(body)
        if not status.startswith("200") or not isinstance(document, dict):
            return _send(start_response, status, headers, body)
        services = [document["service"]] if isinstance(document.get("service"), dict) else []
        services += [s for s in document.get("services") or () if isinstance(s, dict)]
        with self._lock:
            for service in services:
                arn = str(service.get("serviceArn", ""))
                if sent and action in ("CreateService", "UpdateService"):
                    self._rebalancing[arn] = str(sent)
                known = self._rebalancing.get(arn, DEFAULT_REBALANCING)
                service.setdefault("availabilityZoneRebalancing", known)
                for item in (service, *(d for d in service.get("deployments") or () if isinstance(d, dict))):
                    if item.get("networkConfiguration") in ({}, None):
                        item.pop("networkConfiguration", None)
        return _send(start_response, status, headers, json.dumps(document).encode())


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the wrapped application; its status, headers and whole body."""
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.update(status=status, headers=headers)
        return lambda _data: None

    body = b"".join(app(environ, capture))
    return captured["status"], captured["headers"], body


def _send(
    start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]], body: bytes
) -> list[bytes]:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*kept, ("Content-Length", str(len(body)))])
    return [body]


def _acm_viewer_certificate(match: re.Match[bytes]) -> bytes:
    """A `<ViewerCertificate>` naming an ACM certificate, as AWS returns it."""
    block = match.group(0)
    arn = ACM_ARN.search(block)
    if arn is None:
        return block
    block = block.replace(
        b"<CloudFrontDefaultCertificate>true</CloudFrontDefaultCertificate>",
        b"<CloudFrontDefaultCertificate>false</CloudFrontDefaultCertificate>",
    )
    block = block.replace(
        b"<CertificateSource>cloudfront</CertificateSource>", b"<CertificateSource>acm</CertificateSource>"
    )
    return block.replace(b"<Certificate></Certificate>", b"<Certificate>" + arn.group(1) + b"</Certificate>")


def _with_root_volume_size(form: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Add `Ebs.VolumeSize` to each block device mapping with an `Ebs` part but no size and
    no snapshot (AWS takes them from the image; moto refuses the request)."""
    mappings: dict[str, set[str]] = {}
    for key, _value in form:
        head, _, rest = key.partition(".Ebs.")
        if rest and head.startswith("BlockDeviceMapping"):
            mappings.setdefault(head, set()).add(rest)
    extra = [
        (f"{head}.Ebs.VolumeSize", DEFAULT_ROOT_VOLUME_GIB)
        for head, fields in sorted(mappings.items())
        if not fields & {"VolumeSize", "SnapshotId"}
    ]
    return form + extra


def _signing_service(environ: dict[str, Any]) -> str:
    """The service of a SigV4 request's credential scope (…/date/region/SERVICE/aws4_request)."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    parts = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return parts[3] if len(parts) == 5 else ""


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    _set_body(environ, body)
    return body


def _set_body(environ: dict[str, Any], body: bytes) -> None:
    import io  # noqa: PLC0415 - only on this path

    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return None


def _respond(start_response: Callable[..., Any], content_type: str, text: str) -> Iterator[bytes]:
    data = text.encode()
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    yield data
