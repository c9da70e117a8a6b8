"""The ingest and transform state machines as Amazon States Language (pure data, no CDK).

The definitions are plain dicts so they read as ASL, validate in tests without AWS, and go into
the stack with DefinitionSubstitutions: every `${Name}` below is filled by the stack with an ARN
or a name (see PLACEHOLDERS). The shapes each Lambda takes and returns are the handlers' own
(amzlake.aws.handlers; design in the AWS runtime brief).
"""

from __future__ import annotations

from typing import Any

# Placeholders the stack substitutes (DefinitionSubstitutions keys).
INGEST_PLACEHOLDERS = (
    "PlanFunctionArn",
    "CreateReportFunctionArn",
    "CheckReportStatusFunctionArn",
    "DownloadReportFunctionArn",
    "SummarizeFunctionArn",
)
TRANSFORM_PLACEHOLDERS = (
    "UpdateMetadataFunctionArn",
    "GlueJobName",
    "TopicArn",
    "CuratedBucketName",
)
# Where each Glue run writes its JSON summary (glue_job --summary_out), keyed by the execution.
SUMMARY_PREFIX = "glue-summaries"

# amzlake's own throttling error (errors.ThrottledError): a Python Lambda's error name is the
# exception's class name, so the ASL can retry exactly it with a longer backoff.
THROTTLED = ["ThrottledError"]
# Transient failures of the Lambda service itself (AWS: "Handle errors in Step Functions",
# the retry AWS recommends for every Lambda task).
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Errors a retry may cure: Amazon's 5xx and timeouts (errors.RemoteError and subclasses).
REMOTE = ["RemoteError", "RequestTimeout", "OutcomeUnknown"]

# Anything caught inside the Map goes to this state, which shapes the failure for Summarize.
SLICE_FAILED = "SliceFailed"


def _retries() -> list[dict[str, Any]]:
    """Retry with exponential backoff and full jitter: throttling waits longest."""
    return [
        {
            "ErrorEquals": THROTTLED,
            "IntervalSeconds": 10,
            "MaxAttempts": 6,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 600,
            "JitterStrategy": "FULL",
        },
        {
            "ErrorEquals": LAMBDA_TRANSIENT,
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 120,
            "JitterStrategy": "FULL",
        },
        {
            "ErrorEquals": REMOTE,
            "IntervalSeconds": 5,
            "MaxAttempts": 4,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 300,
            "JitterStrategy": "FULL",
        },
    ]


def _invoke(
    function: str,
    payload: dict[str, Any] | str,
    next_state: str | None,
    *,
    catch_to: str | None = SLICE_FAILED,
) -> dict[str, Any]:
    """A Lambda task whose output is the handler's own return value (payload: a template, or a
    path whose value is passed whole)."""
    passed = {"Payload.$": payload} if isinstance(payload, str) else {"Payload": payload}
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": f"${{{function}}}", **passed},
        "OutputPath": "$.Payload",
        "Retry": _retries(),
    }
    if catch_to:
        # The slice's key stays in the input; the error lands beside it for SliceFailed.
        state["Catch"] = [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch_to}
        ]
    if next_state:
        state["Next"] = next_state
    else:
        state["End"] = True
    return state


def slice_states(max_polls: int) -> dict[str, Any]:
    """The per-slice states inside the Map: create, wait/check loop (bounded), download."""
    return {
        "CreateReport": _invoke(
            "CreateReportFunctionArn",
            {"slice_key.$": "$.slice_key", "run_id.$": "$.run_id"},
            "Created?",
        ),
        "Created?": {
            "Type": "Choice",
            # A slice the ledger already holds as finished (a resumed run) or that Amazon
            # refused ends here; create_report has recorded why.
            "Choices": [
                {"Variable": "$.state", "StringEquals": s, "Next": "SliceDone"}
                for s in ("failed", "empty", "cancelled", "downloaded", "curated")
            ],
            "Default": "WaitForReport",
        },
        "WaitForReport": {
            "Type": "Wait",
            "SecondsPath": "$.wait_seconds",
            "Next": "CheckReportStatus",
        },
        "CheckReportStatus": _invoke(
            "CheckReportStatusFunctionArn",
            {"slice_key.$": "$.slice_key", "polls.$": "$.polls"},
            "Ready?",
        ),
        "Ready?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.status", "StringEquals": "ready", "Next": "DownloadReport"},
                {
                    "And": [
                        {"Variable": "$.status", "StringEquals": "waiting"},
                        {"Variable": "$.polls", "NumericLessThan": max_polls},
                    ],
                    "Next": "WaitForReport",
                },
                # Still waiting after max_polls: the ledger keeps the remote report id, so the
                # next run re-attaches to it instead of asking Amazon again (DESIGN invariant 1).
                {"Variable": "$.status", "StringEquals": "waiting", "Next": "WaitedOut"},
            ],
            # done, failed, empty: check_report_status recorded it in the ledger.
            "Default": "SliceDone",
        },
        "WaitedOut": {
            "Type": "Pass",
            "Parameters": {
                "slice_key.$": "$.slice_key",
                "status": "waited_out",
                "polls.$": "$.polls",
            },
            "End": True,
        },
        "DownloadReport": _invoke(
            "DownloadReportFunctionArn", {"slice_key.$": "$.slice_key"}, None
        ),
        SLICE_FAILED: {
            "Type": "Pass",
            # Lambda crashes and timeouts the handler could not record itself: Summarize
            # records them in the ledger, so no failure is lost.
            "Parameters": {
                "slice_key.$": "$.slice_key",
                "status": "failed",
                "error.$": "$.error.Error",
                "cause.$": "$.error.Cause",
            },
            "End": True,
        },
        "SliceDone": {"Type": "Succeed"},
    }


def ingest_definition(*, max_concurrency: int, max_polls: int) -> dict[str, Any]:
    """The ingest state machine: Plan -> Map(slices) {create, wait/check, download} -> Summarize."""
    if max_concurrency < 1 or max_polls < 1:
        raise ValueError("max_concurrency and max_polls must be at least 1")
    return {
        "Comment": "amzlake ingest: plan the slices, fetch each (bounded), summarize the run",
        "StartAt": "Plan",
        "States": {
            "Plan": _invoke(
                # The execution's input goes to plan: {} from the schedule, or a manual
                # {"backfill": {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}}.
                "PlanFunctionArn", "$", "FetchSlices", catch_to=None
            ),
            "FetchSlices": {
                "Type": "Map",
                "ItemsPath": "$.slices",
                "MaxConcurrency": max_concurrency,
                "ItemSelector": {
                    "slice_key.$": "$$.Map.Item.Value.slice_key",
                    "run_id.$": "$.run_id",
                },
                "Label": "Slices",
                "ItemProcessor": {
                    # Distributed: each slice runs as its own child execution, so a run of many
                    # slices, each polled dozens of times, stays far below the 25,000 history
                    # events one Standard execution may have (Step Functions quotas).
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "CreateReport",
                    "States": slice_states(max_polls),
                },
                "ResultPath": "$.results",
                "Next": "Summarize",
            },
            "Summarize": _invoke(
                "SummarizeFunctionArn",
                {"run_id.$": "$.run_id", "results.$": "$.results"},
                None,
                catch_to=None,
            ),
        },
    }


def transform_definition(*, gate_timeout_seconds: int = 6 * 3600) -> dict[str, Any]:
    """The transform state machine: wait for a quiet raw zone (task token) -> Glue -> SNS."""
    return {
        "Comment": "amzlake transform: once no raw object arrived for the quiet period, "
        "run the Glue job and publish its summary",
        "StartAt": "UpdateMetadata",
        "States": {
            "UpdateMetadata": {
                "Type": "Task",
                # The execution pauses until release_quiet (go) or a newer object's
                # update_metadata (superseded) returns this token (guidance step 4).
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "${UpdateMetadataFunctionArn}",
                    # time: when EventBridge saw the object arrive (the quiet period's clock).
                    "Payload": {"detail.$": "$.detail", "time.$": "$.time",
                                "task_token.$": "$$.Task.Token"},
                },
                "TimeoutSeconds": gate_timeout_seconds,
                "ResultPath": "$.gate",
                "Retry": [
                    {
                        "ErrorEquals": LAMBDA_TRANSIENT,
                        "IntervalSeconds": 2,
                        "MaxAttempts": 6,
                        "BackoffRate": 2.0,
                        "JitterStrategy": "FULL",
                    }
                ],
                "Next": "Superseded?",
            },
            "Superseded?": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": "$.gate.superseded", "IsPresent": True},
                            {"Variable": "$.gate.superseded", "BooleanEquals": True},
                        ],
                        "Next": "Superseded",
                    }
                ],
                "Default": "RunTransform",
            },
            "Superseded": {
                "Type": "Succeed",
                "Comment": "a newer raw object's execution carries the transform",
            },
            "RunTransform": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {
                    "JobName": "${GlueJobName}",
                    "Arguments": {
                        "--summary_out.$": "States.Format('s3://${CuratedBucketName}/"
                        f"{SUMMARY_PREFIX}/{{}}.json', "
                        "$$.Execution.Name)"
                    },
                },
                "ResultPath": "$.glue",
                "Retry": [
                    {
                        "ErrorEquals": ["Glue.ConcurrentRunsExceededException"],
                        "IntervalSeconds": 60,
                        "MaxAttempts": 10,
                        "BackoffRate": 1.5,
                        "MaxDelaySeconds": 900,
                        "JitterStrategy": "FULL",
                    }
                ],
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "ResultPath": "$.error",
                        "Next": "NotifyFailure",
                    }
                ],
                "Next": "FetchSummary",
            },
            "FetchSummary": {
                "Type": "Task",
                # The run's summary as the job wrote it (slices curated, rows, quarantined).
                "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {
                    "Bucket": "${CuratedBucketName}",
                    "Key.$": f"States.Format('{SUMMARY_PREFIX}/{{}}.json', $$.Execution.Name)",
                },
                "ResultSelector": {"run.$": "States.StringToJson($.Body)"},
                "ResultPath": "$.summary",
                # No summary (a job that ended before writing it): notify with the error instead.
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "ResultPath": "$.summary",
                        "Next": "NotifySummary",
                    }
                ],
                "Next": "NotifySummary",
            },
            "NotifySummary": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {
                    "TopicArn": "${TopicArn}",
                    "Subject": "amzlake: transform finished",
                    "Message": {
                        "event": "transform_finished",
                        "execution.$": "$$.Execution.Id",
                        "job_run_id.$": "$.glue.Id",
                        "job_run_state.$": "$.glue.JobRunState",
                        "execution_seconds.$": "$.glue.ExecutionTime",
                        "trigger_key.$": "$.detail.object.key",
                        "summary.$": "$.summary",
                    },
                },
                "ResultPath": None,
                "End": True,
            },
            "NotifyFailure": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {
                    "TopicArn": "${TopicArn}",
                    "Subject": "amzlake: transform FAILED",
                    "Message": {
                        "event": "transform_failed",
                        "execution.$": "$$.Execution.Id",
                        "error.$": "$.error.Error",
                        "cause.$": "$.error.Cause",
                    },
                },
                "ResultPath": None,
                "Next": "TransformFailed",
            },
            # Failing the execution (not just notifying) is what the failed-executions alarm sees.
            "TransformFailed": {
                "Type": "Fail",
                "Error": "TransformFailed",
                "Cause": "the Glue job failed; see the SNS message and its run",
            },
        },
    }
