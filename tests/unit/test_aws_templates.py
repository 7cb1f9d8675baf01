"""The AWS stack beyond the functions (infra/aws/*.yaml, nested in template.yaml), checked
without an AWS account: cfn-lint over every nested template, the SAM translator over the whole
stack, and the facts the product relies on (backups, secrets, network, GPU, migrations)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.aws.package import as_packaged
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import load_raw

TEMPLATE = REPO_ROOT / "template.yaml"
NESTED = sorted((REPO_ROOT / "infra" / "aws").glob("*.yaml"))
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def _nested(name: str) -> dict[str, Any]:
    return load_raw(REPO_ROOT / "infra" / "aws" / name)


def _resources(raw: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == kind}


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def transformed() -> Iterator[dict[str, Any]]:
    from samtranslator.translator.transform import transform

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield transform(as_packaged(load_raw(TEMPLATE)), {}, _NoManagedPolicies())


@pytest.mark.parametrize("path", NESTED, ids=[p.name for p in NESTED])
def test_cfn_lint_passes_on_each_nested_template(path: Path) -> None:
    result = subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_nested_template_is_a_stack_of_template_yaml() -> None:
    apps = _resources(load_raw(TEMPLATE), "AWS::Serverless::Application")
    locations = {app["Properties"]["Location"] for app in apps.values()}
    assert locations == {f"infra/aws/{p.name}" for p in NESTED}


def test_nested_parameters_and_outputs_are_wired() -> None:
    """Each nested stack gets exactly parameters it declares, every one it requires, and every
    `!GetAtt <Stack>.Outputs.<Name>` names an output the nested template has."""
    raw = load_raw(TEMPLATE)
    apps = _resources(raw, "AWS::Serverless::Application")
    outputs = {}
    for logical_id, app in apps.items():
        nested = load_raw(REPO_ROOT / app["Properties"]["Location"])
        declared = nested.get("Parameters", {})
        given = set(app["Properties"].get("Parameters", {}))
        assert given <= set(declared), (logical_id, given - set(declared))
        required = {name for name, spec in declared.items() if "Default" not in spec}
        assert required <= given, (logical_id, required - given)
        outputs[logical_id] = set(nested.get("Outputs", {}))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            target = node.get("Fn::GetAtt")
            if isinstance(target, list) and target[0] in apps:
                kind, name = target[1].split(".", 1)
                assert kind == "Outputs" and name in outputs[target[0]], target
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(raw)


def test_the_whole_stack_translates_and_lints(transformed: dict[str, Any], tmp_path: Path) -> None:
    stacks = _resources(transformed, "AWS::CloudFormation::Stack")
    assert set(stacks) == {"Network", "Secrets", "Data", "Inference", "Web"}
    out = tmp_path / "transformed.json"
    out.write_text(json.dumps(transformed))
    result = subprocess.run([str(CFN_LINT), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ secrets
REMOVED_PARAMETERS = {"AuthJwtSecret", "AuthEncryptionKey", "VoiceToken", "DatabaseUrl", "RedisUrl"}
MANAGED_SETTINGS = {"AUTH_JWT_SECRET", "AUTH_ENCRYPTION_KEY", "VOICE_TOKEN", "INFERENCE_TOKEN"}


def test_no_key_is_a_template_parameter_or_a_plain_environment_variable(
    transformed: dict[str, Any],
) -> None:
    parameters = load_raw(TEMPLATE)["Parameters"]
    assert not REMOVED_PARAMETERS & set(parameters)
    # No secret is a parameter at all, not even NoEcho (the SMTP password is a secret too).
    assert not {name for name, spec in parameters.items() if spec.get("NoEcho")}
    for logical_id, function in _resources(transformed, "AWS::Lambda::Function").items():
        env = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not (MANAGED_SETTINGS | {"DATABASE_URL"}) & set(env), logical_id


def test_generated_secrets_hold_setting_names() -> None:
    everything = _resources(_nested("secrets.yaml"), "AWS::SecretsManager::Secret")
    secrets = {k: s for k, s in everything.items() if "GenerateSecretString" in s["Properties"]}
    keys = {s["Properties"]["GenerateSecretString"]["GenerateStringKey"] for s in secrets.values()}
    assert keys == MANAGED_SETTINGS
    fields = {name.upper() for name in Settings.model_fields}
    assert keys <= fields
    for secret in secrets.values():
        generated = secret["Properties"]["GenerateSecretString"]
        assert generated["PasswordLength"] >= 32  # AUTH_JWT_SECRET's minimum


def test_every_function_reads_the_secrets_it_is_pointed_at(transformed: dict[str, Any]) -> None:
    raw = load_raw(TEMPLATE)
    functions = set(_resources(raw, "AWS::Serverless::Function"))
    roles = {ref["Ref"] for ref in raw["Resources"]["AppSecretsReadPolicy"]["Properties"]["Roles"]}
    # MigrateFunction reads the database secret alone, through a policy of its own.
    assert roles == {f"{f}Role" for f in functions - {"MigrateFunction"}}
    assert set(roles) <= set(transformed["Resources"])  # the roles SAM generates
    env = raw["Globals"]["Function"]["Environment"]["Variables"]
    arns = env["SECRETS_ARNS"]["Fn::Join"][1]
    assert {"Fn::GetAtt": ["Data", "Outputs.DatabaseSecretArn"]} in arns


def test_the_smtp_password_comes_from_secrets_manager(transformed: dict[str, Any]) -> None:
    """SES issues it, so the operator puts it into an empty secret that every function's
    SECRETS_ARNS names; no environment variable may shadow it (explicit env wins)."""
    nested = _nested("secrets.yaml")
    smtp = nested["Resources"]["SmtpSecret"]["Properties"]
    assert json.loads(smtp["SecretString"]) == {} and "SMTP_PASSWORD" in smtp["Description"]
    assert "smtp_password" in Settings.model_fields
    arns = nested["Outputs"]["AppSecretArns"]["Value"]["Fn::Join"][1]
    assert {"Ref": "SmtpSecret"} in arns
    raw = load_raw(TEMPLATE)
    assert "SmtpPassword" not in raw["Parameters"]
    assert raw["Outputs"]["SmtpSecretArn"]["Value"] == {
        "Fn::GetAtt": ["Secrets", "Outputs.SmtpSecretArn"]
    }
    mailer = raw["Resources"]["MailerFunction"]["Properties"]["Environment"]["Variables"]
    assert "SMTP_PASSWORD" not in mailer and "SMTP_USERNAME" in mailer
    for logical_id, function in _resources(transformed, "AWS::Lambda::Function").items():
        env = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "SMTP_PASSWORD" not in env, logical_id


def test_the_inference_service_scales_on_requests_per_task() -> None:
    """Target tracking between the desired count (floor) and InferenceMaxCount, on the ALB's
    requests per target; the capacity provider's managed scaling starts the GPU hosts."""
    raw = _nested("inference.yaml")
    resources = raw["Resources"]
    target = resources["InferenceScalableTarget"]
    assert target["Condition"] == "ServiceRuns"  # parked (0 tasks): no scaling back up
    props = target["Properties"]
    assert props["ScalableDimension"] == "ecs:service:DesiredCount"
    assert (props["MinCapacity"], props["MaxCapacity"]) == (
        {"Ref": "InferenceDesiredCount"},
        {"Ref": "InferenceMaxCount"},
    )
    assert "InferenceService.Name" in props["ResourceId"]["Fn::Sub"]
    policy = resources["InferenceScalingPolicy"]["Properties"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == {"Ref": "InferenceScalableTarget"}
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    metric = config["PredefinedMetricSpecification"]
    assert metric["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    label = metric["ResourceLabel"]["Fn::Sub"]
    assert "LoadBalancer.LoadBalancerFullName" in label
    assert "TargetGroup.TargetGroupFullName" in label
    assert config["TargetValue"] == {"Ref": "InferenceRequestsPerTask"}
    managed = resources["CapacityProvider"]["Properties"]["AutoScalingGroupProvider"]
    assert managed["ManagedScaling"]["Status"] == "ENABLED"
    assert managed["ManagedScaling"]["MaximumScalingStepSize"] == {"Ref": "GpuMaxInstances"}
    service = resources["InferenceService"]["Properties"]
    assert service["CapacityProviderStrategy"][0]["CapacityProvider"] == {"Ref": "CapacityProvider"}
    app = load_raw(TEMPLATE)["Resources"]["Inference"]["Properties"]["Parameters"]
    assert app["InferenceMaxCount"] == {"Ref": "InferenceMaxCount"}


def test_the_database_secret_is_in_rds_format() -> None:
    data = _nested("data.yaml")["Resources"]
    template = json.loads(
        data["DatabaseSecret"]["Properties"]["GenerateSecretString"]["SecretStringTemplate"]
    )
    assert template["engine"] == "postgres" and {"username", "dbname"} <= set(template)
    attachment = data["DatabaseSecretAttachment"]["Properties"]
    assert attachment["TargetId"] == {"Ref": "Database"}  # adds host and port


# ------------------------------------------------------------------ network and data
def test_every_function_is_in_the_vpc(transformed: dict[str, Any]) -> None:
    outside = {
        logical_id
        for logical_id, function in _resources(transformed, "AWS::Lambda::Function").items()
        if "VpcConfig" not in function["Properties"]
    }
    # The voice service reaches nothing private (its models are in its image).
    assert outside == {"VoiceEngineFunction"}


def test_rds_keeps_seven_days_of_encrypted_backups_and_is_private() -> None:
    database = _nested("data.yaml")["Resources"]["Database"]
    props = database["Properties"]
    assert props["BackupRetentionPeriod"] == 7
    assert props["StorageEncrypted"] is True
    assert props["PubliclyAccessible"] is False
    assert props["MultiAZ"] == {"Ref": "DbMultiAz"}
    assert props["Engine"] == "postgres" and props["EngineVersion"] == {"Ref": "DbEngineVersion"}
    assert database["DeletionPolicy"] == "Snapshot"


def test_valkey_uses_tls() -> None:
    data = _nested("data.yaml")
    cache = data["Resources"]["Cache"]["Properties"]
    assert cache["Engine"] == "valkey" and cache["TransitEncryptionEnabled"] is True
    assert data["Outputs"]["RedisUrl"]["Value"]["Fn::Sub"].startswith("rediss://")


# ------------------------------------------------------------------ migrations
def test_migrations_run_at_deploy_after_the_database() -> None:
    resources = load_raw(TEMPLATE)["Resources"]
    custom = resources["MigrationsResource"]
    assert custom["Type"] == "AWS::CloudFormation::CustomResource"
    assert "Data" in custom["DependsOn"]
    assert custom["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["MigrateFunction", "Arn"]}
    # A new version (new code, new sql/) changes the property: CloudFormation sends Update.
    assert custom["Properties"]["FunctionVersion"] == {"Ref": "MigrateFunction.Version"}
    function = resources["MigrateFunction"]
    assert function["Properties"]["Handler"] == "functions.migrate.handler.handler"
    assert "sql" in function["Metadata"]["BuildProperties"]["Include"]


# ------------------------------------------------------------------ GPU containers
def test_the_inference_service_is_internal_and_health_checked() -> None:
    resources = _nested("inference.yaml")["Resources"]
    assert resources["LoadBalancer"]["Properties"]["Scheme"] == "internal"
    target = resources["TargetGroup"]["Properties"]
    assert target["HealthCheckPath"] == "/healthz" and target["Port"] == 8090
    (container,) = resources["InferenceTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert {"Type": "GPU", "Value": "1"} in container["ResourceRequirements"]
    names = {e["Name"] for e in container["Environment"]}
    assert "INFERENCE_TOKEN" not in names
    assert [s["Name"] for s in container["Secrets"]] == ["INFERENCE_TOKEN"]
    assert {"Name": "JAX_CACHE_S3", "Value": "on"} in container["Environment"]


def test_training_runs_as_a_gpu_task_per_message_with_a_dead_letter_path() -> None:
    nested = _nested("inference.yaml")["Resources"]
    (container,) = nested["TrainTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert {"Type": "GPU", "Value": "1"} in container["ResourceRequirements"]
    assert container["Command"] == ["python", "-m", "functions.train.task"]
    assert container["Image"] == {"Ref": "InferenceImageUri"}  # the image with CUDA's JAX
    pipe = nested["TrainPipe"]["Properties"]
    assert pipe["Source"] == {"Ref": "TrainQueueArn"}
    assert pipe["SourceParameters"]["SqsQueueParameters"]["BatchSize"] == 1
    (override,) = pipe["TargetParameters"]["EcsTaskParameters"]["Overrides"]["ContainerOverrides"]
    assert override["Environment"] == [{"Name": "TRAIN_MESSAGE", "Value": "$.body"}]
    rule = nested["TrainFailedRule"]["Properties"]
    assert rule["Targets"][0]["Arn"] == {"Ref": "TrainDeadLetterQueueArn"}

    root = load_raw(TEMPLATE)["Resources"]
    given = root["Inference"]["Properties"]["Parameters"]
    assert given["TrainQueueArn"] == {"Fn::GetAtt": ["TrainQueue", "Arn"]}
    assert given["TrainDeadLetterQueueArn"] == {"Fn::GetAtt": ["TrainDeadLetterQueue", "Arn"]}
    redrive = root["TrainQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["TrainDeadLetterQueue", "Arn"]}
    # One consumer in AWS: the Lambda's mapping is off exactly when the pipe runs.
    train_event = root["TrainFunction"]["Properties"]["Events"]["Train"]["Properties"]
    assert train_event["Enabled"] == {"Fn::If": ["TrainOnLambda", True, False]}
    assert given["TrainPipeState"] == {"Fn::If": ["TrainOnLambda", "STOPPED", "RUNNING"]}


def test_the_functions_get_the_inference_url_and_token() -> None:
    env = load_raw(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    assert env["INFERENCE_URL"] == {"Fn::GetAtt": ["Inference", "Outputs.InferenceUrl"]}
    joined = env["SECRETS_ARNS"]["Fn::Join"][1]
    assert {"Fn::GetAtt": ["Secrets", "Outputs.AppSecretArns"]} in joined
    # INFERENCE_TOKEN comes with the app's secrets (the service checks it as its bearer).
    app_secrets = _nested("secrets.yaml")["Outputs"]["AppSecretArns"]["Value"]["Fn::Join"][1]
    assert {"Ref": "InferenceTokenSecret"} in app_secrets


# ------------------------------------------------------------------ the web app
def test_cloudfront_routes_the_api_and_the_socket_to_api_gateway() -> None:
    web = _nested("web.yaml")["Resources"]
    config = web["Distribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    rest_stage = load_raw(TEMPLATE)["Resources"]["RestApi"]["Properties"]["StageName"]
    assert origins["api"]["OriginPath"] == {"Fn::Sub": "/${RestApiStage}"}
    assert _nested("web.yaml")["Parameters"]["RestApiStage"]["Default"] == rest_stage
    assert "OriginAccessControlId" in origins["site"]
    behaviours = [b["PathPattern"] for b in config["CacheBehaviors"]]
    # CloudFront takes the first match: the socket before the rest of /v1/*.
    assert behaviours.index("/v1/chat/stream") < behaviours.index("/v1/*")
    targets = {b["PathPattern"]: b["TargetOriginId"] for b in config["CacheBehaviors"]}
    assert targets["/v1/*"] == "api" and targets["/v1/chat/stream"] == "socket"
    assert "ResponseHeadersPolicyId" in config["DefaultCacheBehavior"]


def _run_cloudfront_function(code: str, event: dict[str, Any]) -> dict[str, Any]:
    script = code + "\nprocess.stdout.write(JSON.stringify(handler(" + json.dumps(event) + ")));"
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def _request(uri: str, cookies: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "request": {
            "uri": uri,
            "method": "GET",
            "cookies": {k: {"value": v} for k, v in (cookies or {}).items()},
            "headers": {},
        }
    }


def _token(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.signature"


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the functions")


@needs_node
def test_spa_fallback_serves_index_for_app_routes_only() -> None:
    code = _nested("web.yaml")["Resources"]["SpaFallbackFunction"]["Properties"]["FunctionCode"]
    assert _run_cloudfront_function(code, _request("/settings"))["uri"] == "/index.html"
    assert _run_cloudfront_function(code, _request("/c/123"))["uri"] == "/index.html"
    asset = "/assets/index-BdH2a8Xk.js"
    assert _run_cloudfront_function(code, _request(asset))["uri"] == asset
    redirect = _run_cloudfront_function(code, _request("/admin"))
    assert redirect["statusCode"] == 302
    assert redirect["headers"]["location"]["value"] == "/admin/"


@needs_node
def test_admin_guard_lets_only_an_unexpired_admin_token_through() -> None:
    code = _nested("web.yaml")["Resources"]["AdminGuardFunction"]["Properties"]["FunctionCode"]
    later = int(time.time()) + 600
    admin = _token({"sub": "u", "role": "admin", "exp": later})
    passed = _run_cloudfront_function(code, _request("/admin/users", {"acs_access": admin}))
    assert passed["uri"] == "/admin/index.html"
    asset = _run_cloudfront_function(code, _request("/admin/app.js", {"acs_access": admin}))
    assert asset["uri"] == "/admin/app.js"
    for cookies in (
        {},
        {"acs_access": "not-a-token"},
        {"acs_access": _token({"sub": "u", "role": "user", "exp": later})},
        {"acs_access": _token({"sub": "u", "role": "admin", "exp": int(time.time()) - 5})},
    ):
        refused = _run_cloudfront_function(code, _request("/admin/users", cookies))
        assert refused["statusCode"] == 401, cookies


# ------------------------------------------------------------------ samconfig.toml
def test_samconfig_environments_set_real_parameters() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    parameters = load_raw(TEMPLATE)["Parameters"]
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    for env in ("dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert "CAPABILITY_AUTO_EXPAND" in deploy["capabilities"].split()
        assert "CAPABILITY_IAM" in deploy["capabilities"].split()
        overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
        assert set(overrides) <= set(parameters), set(overrides) - set(parameters)
        assert required <= set(overrides), (env, required - set(overrides))
        for name, value in overrides.items():
            allowed = parameters[name].get("AllowedValues")
            assert allowed is None or value in [str(a) for a in allowed], (env, name, value)
    prod = dict(
        i.split("=", 1) for i in config["prod"]["deploy"]["parameters"]["parameter_overrides"]
    )
    assert prod["DbMultiAz"] == "true" and prod["NatGateways"] == "2"
