"""Bootstrap's data-store passwords reach, as TF_VAR_<name>, only the units that declare them."""

from pathlib import Path

from refarch import load_repo, plan
from refarch.aws import AwsSessions
from refarch.engines import EngineResult
from refarch.exec.process import ProcessResult
from refarch.jobs.deploy import run
from refarch.provision.secrets import DEFAULT_PREFIX, password_secret
from refarch.settings import load_settings
from tests.helpers import write_tree

PASSWORD = "correct-horse-battery-staple-0123456789"


class RecordingEngine:
    """Records each unit's environment and prints what a careless module would print."""

    name = "recording"
    resolves_dependencies = False

    def __init__(self):
        self.env = {}

    def execute(self, job):
        self.env[job.unit.path] = dict(job.env)
        job.on_line("stdout", f"connecting with {job.env.get('TF_VAR_db_password', 'nothing')}")
        return EngineResult(ProcessResult((self.name,), ".", 0, "", "", 0.0), {})

    def read_outputs(self, job):
        return {}


def test_passwords_go_to_declaring_units_only_and_are_masked(moto_server, tmp_path):
    root = write_tree(
        tmp_path / "live",
        {
            "refarch.toml": f'endpoint_url = "{moto_server.endpoint_url}"\n'
            '[secrets]\npasswords = ["db_password"]\n',
            "dev/account.hcl": 'locals {\n  account_name = "dev"\n  aws_account_id = "444444444444"\n}\n',
            "dev/us-east-1/region.hcl": 'locals {\n  aws_region = "us-east-1"\n}\n',
            "modules/db/main.tf": 'variable "db_password" {\n  type = string\n}\n',
            "modules/app/main.tf": 'variable "name" {}\n',
            "dev/us-east-1/db/terragrunt.hcl": 'terraform {\n  source = "../../../modules//db"\n}\n',
            "dev/us-east-1/app/terragrunt.hcl": 'terraform {\n  source = "../../../modules/app"\n}\n',
        },
    )
    settings = load_settings(Path(root), env={})
    sessions = AwsSessions(settings)
    sessions.client("secretsmanager", "444444444444", "us-east-1").create_secret(
        Name=DEFAULT_PREFIX + password_secret("db_password"), SecretString=PASSWORD
    )

    repo = load_repo(root, env={}, cache=False)
    engine = RecordingEngine()
    report = run(plan(repo), "apply", settings, engine=engine, sessions=sessions, base_env={})

    assert report.ok
    assert engine.env["dev/us-east-1/db"]["TF_VAR_db_password"] == PASSWORD
    assert "TF_VAR_db_password" not in engine.env["dev/us-east-1/app"]
    db_log = Path(report.units["dev/us-east-1/db"].log_path)
    text = db_log.read_text()
    assert "connecting with" in text and PASSWORD not in text
