"""An offline check of IAM identity policies against the API calls code made, as recorded by a
moto server (tests/infra/recording_moto.py).

Each recorded request becomes the IAM authorization requests AWS would make for it: an action and
every resource ARN it needs (the Service Authorization Reference's "required" resource types: a
Glue table call needs the catalog, the database and the table), plus the KMS calls AWS makes with
the caller's identity for it (an SSE-KMS object put needs kms:GenerateDataKey, a get kms:Decrypt:
S3 user guide, "Using server-side encryption with AWS KMS keys"; GetSecretValue of a secret under
a customer managed key needs kms:Decrypt: Secrets Manager user guide, "Secret encryption and
decryption"; a publish to an SSE topic needs kms:GenerateDataKey* and kms:Decrypt: SNS developer
guide, "Encryption at rest"). Each must be allowed by an Allow statement of the role's policies
(action and resource wildcards, the condition operators the stack uses) and denied by none.

The policies come from the synthesized template, with CloudFormation's intrinsic functions
resolved against the names the test gave the resources in moto.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
PSEUDO = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
          "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}


@dataclass(frozen=True)
class Request:
    """One IAM authorization request: the action, the resource and the condition context."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    why: str = ""  # the API call it comes from


@dataclass
class World:
    """What the test deployed in moto: how to resolve the template, and the buckets' keys."""

    refs: dict[str, Any]  # logical id -> Ref value
    attrs: dict[tuple[str, str], Any]  # (logical id, attribute) -> Fn::GetAtt value
    bucket_keys: dict[str, str] = field(default_factory=dict)  # bucket -> default KMS key ARN
    secret_keys: dict[str, str] = field(default_factory=dict)  # secret ARN or name -> key ARN
    topic_keys: dict[str, str] = field(default_factory=dict)  # topic ARN -> key ARN
    token_machine: str = ""  # the state machine whose task tokens the gate handlers hold

    def resolve(self, value: Any) -> Any:
        """`value` with Ref, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split and Fn::Sub resolved;
        a reference to something not deployed resolves to a string that matches no ARN."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        (fn, arg), = value.items()
        if fn == "Ref":
            return PSEUDO[arg] if arg in PSEUDO else self.refs.get(arg, f"<not deployed:{arg}>")
        if fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.attrs.get((logical, attr), f"<not deployed:{logical}.{attr}>")
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(str(self.resolve(p)) for p in parts)
        if fn == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(index)]
        if fn == "Fn::Split":
            sep, text = arg
            return str(self.resolve(text)).split(sep)
        if fn == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            names = {} if isinstance(arg, str) else arg[1]

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name in names:
                    return str(self.resolve(names[name]))
                if "." in name:
                    return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
                return str(self.resolve({"Ref": name}))

            return re.sub(r"\$\{([^}!][^}]*)\}", sub, text)
        return {fn: self.resolve(arg)}


# ---- Policies --------------------------------------------------------------------------------


def role_statements(template: Mapping[str, Any], role: str, world: World) -> list[dict[str, Any]]:
    """Every statement of the role's inline and attached policies in `template`, resolved."""
    resources = template["Resources"]
    props = resources[role]["Properties"]
    managed = [json.dumps(a) for a in props.get("ManagedPolicyArns", [])]
    # CDK's default Lambda role: the basic execution policy only writes the function's logs.
    if [a for a in managed if "AWSLambdaBasicExecutionRole" not in a]:
        raise ValueError(f"{role}: managed policies are not evaluated here")
    docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
    for r in resources.values():
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and \
                {"Ref": role} in r["Properties"].get("Roles", []):
            docs.append(r["Properties"]["PolicyDocument"])
    return [world.resolve(s) for doc in docs for s in doc["Statement"]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, text: str, *, case: bool) -> bool:
    """IAM's wildcard match: * any run of characters, ? any one (also across ':' and '/')."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, 0 if case else re.IGNORECASE) is not None


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        if_exists = operator.endswith("IfExists")
        op = operator.removesuffix("IfExists")
        for key, wanted in tests.items():
            value = context.get(key)
            if value is None:
                if if_exists:
                    continue
                return False
            values = [str(w) for w in _listed(wanted)]
            if op in ("StringEquals", "ArnEquals"):
                ok = value in values
            elif op in ("StringLike", "ArnLike"):
                ok = any(_glob(w, value, case=True) for w in values)
            elif op == "StringNotEquals":
                ok = value not in values
            elif op == "Bool":
                ok = value.lower() in [w.lower() for w in values]
            else:
                raise ValueError(f"condition operator {operator} is not evaluated here")
            if not ok:
                return False
    return True


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise ValueError("NotAction / NotResource are not evaluated here")
    if not any(_glob(a, request.action, case=False) for a in _listed(statement["Action"])):
        return False
    if not any(_glob(str(r), request.resource, case=True)
               for r in _listed(statement.get("Resource", []))):
        return False
    return _condition_holds(statement.get("Condition", {}), dict(request.context))


def allowed(statements: Sequence[Mapping[str, Any]], request: Request) -> bool:
    """Whether the identity policy allows `request` (an explicit Deny wins)."""
    if any(s["Effect"] == "Deny" and _matches(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, request) for s in statements)


# ---- Recorded requests -> authorization requests ---------------------------------------------


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _s3(record: Mapping[str, Any], world: World) -> list[Request]:
    method, path = record["method"], unquote(record["path"])
    query = dict(record["query"])
    bucket, _, key = path.lstrip("/").partition("/")
    bucket_arn, object_arn = f"arn:{PARTITION}:s3:::{bucket}", f"arn:{PARTITION}:s3:::{bucket}/{key}"
    why = f"s3 {method} {path}" + (f"?{'&'.join(query)}" if query else "")
    out: list[Request] = []

    def req(action: str, resource: str, **context: str) -> None:
        out.append(Request(action, resource, tuple(sorted(context.items())), why))

    key_arn = record.get("sse_key") or world.bucket_keys.get(bucket)
    if not key:
        if method == "GET" and "uploads" in query:
            req("s3:ListBucketMultipartUploads", bucket_arn)
        elif method == "GET" and "location" in query:
            req("s3:GetBucketLocation", bucket_arn)
        elif method in ("GET", "HEAD") and not (set(query) - {
                "list-type", "prefix", "delimiter", "max-keys", "continuation-token",
                "start-after", "encoding-type", "marker", "fetch-owner"}):
            req("s3:ListBucket", bucket_arn, **{"s3:prefix": query.get("prefix", "")})
        elif method == "POST" and "delete" in query:
            for k in re.findall(r"<Key>([^<]*)</Key>", record.get("body") or ""):
                req("s3:DeleteObject", f"{bucket_arn}/{k}")
        else:
            raise ValueError(f"S3 bucket operation not mapped: {why}")
        return out
    if method in ("GET", "HEAD") and "uploadId" in query:
        req("s3:ListMultipartUploadParts", object_arn)
    elif method in ("GET", "HEAD"):
        req("s3:GetObjectVersion" if "versionId" in query else "s3:GetObject", object_arn)
        if method == "GET" and key_arn:
            req("kms:Decrypt", key_arn)
    elif method == "PUT":
        req("s3:PutObject", object_arn)
        if record.get("copy_source"):
            src = unquote(record["copy_source"]).lstrip("/").split("?")[0]
            req("s3:GetObject", f"arn:{PARTITION}:s3:::{src}")
        if key_arn:
            req("kms:GenerateDataKey", key_arn)
    elif method == "POST" and "uploads" in query:
        req("s3:PutObject", object_arn)
        if key_arn:  # a multipart upload under SSE-KMS needs both (S3 user guide)
            req("kms:GenerateDataKey", key_arn)
            req("kms:Decrypt", key_arn)
    elif method == "POST" and "uploadId" in query:
        req("s3:PutObject", object_arn)
    elif method == "DELETE" and "uploadId" in query:
        req("s3:AbortMultipartUpload", object_arn)
    elif method == "DELETE":
        req("s3:DeleteObjectVersion" if "versionId" in query else "s3:DeleteObject", object_arn)
    else:
        raise ValueError(f"S3 object operation not mapped: {why}")
    return out


def _dynamodb(op: str, body: Mapping[str, Any]) -> list[str]:
    tables = [body["TableName"]] if "TableName" in body else []
    tables += list(body.get("RequestItems", {}))
    for item in body.get("TransactItems", []):
        tables += [v["TableName"] for v in item.values()]
    arns = [_arn("dynamodb", f"table/{t}") for t in tables]
    if "IndexName" in body:
        arns = [f"{a}/index/{body['IndexName']}" for a in arns]
    if not arns:
        raise ValueError(f"DynamoDB {op}: no table named")
    return arns


def _glue(op: str, body: Mapping[str, Any]) -> list[str]:
    """The resources a Glue Data Catalog operation requires (Service Authorization Reference,
    "Actions defined by AWS Glue": catalog, database and, for table operations, the table)."""
    catalog = _arn("glue", "catalog")
    if op in ("GetDatabases",):
        # A list of every database: IAM checks it against the database resource type as a whole.
        return [catalog, _arn("glue", "database/*")]
    db = body.get("DatabaseName") or body.get("Name") or (body.get("DatabaseInput") or {}).get(
        "Name")
    if db is None:
        raise ValueError(f"Glue {op}: no database named")
    if op in ("GetDatabase", "CreateDatabase", "UpdateDatabase", "DeleteDatabase"):
        return [catalog, _arn("glue", f"database/{db}")]
    if op in ("GetTables", "SearchTables"):
        return [catalog, _arn("glue", f"database/{db}"), _arn("glue", f"table/{db}/*")]
    table = body.get("Name") if "DatabaseName" in body else None
    table = (body.get("TableInput") or {}).get("Name") or body.get("TableName") or table
    if table is None:
        raise ValueError(f"Glue {op}: no table named")
    return [catalog, _arn("glue", f"database/{db}"), _arn("glue", f"table/{db}/{table}")]


def _cbor_text(body: str, key: str) -> str | None:
    """The short text value after map key `key` in a CBOR body (recorded as text)."""
    i = body.find(key)
    if i < 0 or i + len(key) >= len(body):
        return None
    j = i + len(key)
    head = ord(body[j])
    if 0x60 <= head <= 0x77:  # a text string of 0..23 bytes
        return body[j + 1:j + 1 + head - 0x60]
    if head == 0x78:  # a text string with a one-byte length
        return body[j + 2:j + 2 + ord(body[j + 1])]
    return None


def requests_for(record: Mapping[str, Any], world: World) -> list[Request]:
    """The authorization requests AWS would make for one recorded API call."""
    service = record["service"]
    if service == "s3":
        return _s3(record, world)
    body_text = record.get("body") or ""
    rpc = re.fullmatch(r"/service/[^/]+/operation/([A-Za-z]+)", record.get("path") or "")
    if rpc:  # Smithy RPC v2 CBOR (CloudWatch's protocol in current botocore)
        op, body = rpc.group(1), {}
    elif record.get("target"):
        op = record["target"].rsplit(".", 1)[-1]
        body = json.loads(body_text or "{}")
    else:  # query protocol (SNS, SQS's older form): Action=...&...
        body = dict(parse_qsl(body_text, keep_blank_values=True))
        op = body.get("Action", "")
    why = f"{service} {op}"
    if service == "dynamodb":
        return [Request(f"dynamodb:{op}", arn, (), why) for arn in _dynamodb(op, body)]
    if service == "glue":
        return [Request(f"glue:{op}", arn, (), why) for arn in _glue(op, body)]
    if service == "secretsmanager":
        secret = body["SecretId"]
        out = [Request(f"secretsmanager:{op}", secret if secret.startswith("arn:")
                       else _arn("secretsmanager", f"secret:{secret}-??????"), (), why)]
        if op == "GetSecretValue" and secret in world.secret_keys:
            out.append(Request("kms:Decrypt", world.secret_keys[secret], (), why))
        return out
    if service == "sns":
        topic = body.get("TopicArn") or body.get("TargetArn") or ""
        out = [Request(f"sns:{op}", topic, (), why)]
        if op == "Publish" and topic in world.topic_keys:
            out += [Request("kms:GenerateDataKey", world.topic_keys[topic], (), why),
                    Request("kms:Decrypt", world.topic_keys[topic], (), why)]
        return out
    if service == "states":
        # Task tokens carry their execution; the gate's come from the transform machine.
        return [Request(f"states:{op}", world.token_machine, (), why)]
    if service == "kms":
        return [Request(f"kms:{op}", body["KeyId"], (), why)]
    if service == "monitoring":
        namespace = body.get("Namespace") or _cbor_text(body_text, "Namespace") or ""
        return [Request(f"cloudwatch:{op}", "*", (("cloudwatch:namespace", namespace),), why)]
    raise ValueError(f"service {service} ({why}) is not mapped")


@dataclass(frozen=True)
class Denied:
    """A request a role's policy does not allow."""

    role: str
    request: Request


def check_calls(records: Iterable[Mapping[str, Any]], roles: Mapping[str, str],
                statements: Callable[[str], Sequence[Mapping[str, Any]]],
                world: World) -> tuple[list[Denied], dict[str, set[str]]]:
    """The denied requests among the calls each role's key made (roles: key id -> role), and
    what each role was seen doing (action names)."""
    denied: list[Denied] = []
    seen: dict[str, set[str]] = {}
    for record in records:
        role = roles.get(record.get("key_id") or "")
        if role is None:
            continue
        policy = statements(role)
        for request in requests_for(record, world):
            seen.setdefault(role, set()).add(request.action)
            if not allowed(policy, request):
                denied.append(Denied(role, request))
    return denied, seen
