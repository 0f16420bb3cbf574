"""Pre-provision fresh accounts in tier order, each through its own role, resumable from a record."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import botocore.exceptions

from refarch.aws import AwsSessions
from refarch.errors import BootstrapFailed, ConfigError, ProvisionError, RefarchError, UsageError
from refarch.models import Account, Repo
from refarch.provision import Result, Section
from refarch.provision.backend import (
    BackendConfig,
    BucketSpec,
    TableSpec,
    ensure_bucket,
    ensure_lock_table,
    owned_buckets,
    specs_from_units,
)
from refarch.provision.certs import (
    CLOUDFRONT_REGION,
    CertMaterial,
    CertsConfig,
    acm_certificates,
    ensure_imported,
    ensure_leaf,
    ensure_private_ca,
    ensure_public_certificate,
)
from refarch.provision.declared import with_declared
from refarch.provision.dns import DnsConfig, find_zone, public_zones, zone_for
from refarch.provision.keypairs import KeyPairsConfig, ensure_key_material, ensure_key_pair, key_store_dir
from refarch.provision.kms_admin import (
    KmsAdminConfig,
    ensure_kms_admin,
    find_kms_admin,
    require_admins,
)
from refarch.provision.ledger_table import ensure_ledger
from refarch.provision.record import (
    RECORD_PATH,
    AccountRecord,
    BootstrapRecord,
    now,
    read_record,
    write_record,
)
from refarch.provision.secrets import (
    DirectoryStore,
    SecretsConfig,
    SecretsManagerStore,
    SecretStore,
    ensure_password,
)
from refarch.provision.vpn_pki import provision_vpn_pki
from refarch.repo import load_repo
from refarch.runner.ledger_dynamodb import LedgerConfig, ledger_account, ledger_place
from refarch.runner.repo_lock import repo_lock
from refarch.settings import Settings, load_settings

__all__ = [
    "PROVISIONERS",
    "BootstrapConfig",
    "BootstrapEvent",
    "BootstrapRecord",
    "BootstrapRequest",
    "bootstrap",
    "parse_only",
    "run_bootstrap",
]

# The provisioners of one account, in the order they run (`--only` names a subset). A new one
# (the VPN PKI: "vpn") is a name here and a method of _AccountRun of the same name.
PROVISIONERS = ("kms", "backend", "ledger", "passwords", "keypairs", "certs", "dns", "vpn")
PROVISIONER_OF = {  # Result.kind -> the provisioner that makes it
    "kms-admin": "kms",
    "s3-bucket": "backend",
    "dynamodb-table": "backend",
    "ledger-table": "ledger",
    "ledger-bucket": "ledger",
    "password": "passwords",
    "key-material": "keypairs",
    "key-pair": "keypairs",
    "private-ca": "certs",
    "certificate": "certs",
    "acm-certificate": "certs",
    "hosted-zone": "dns",
}


@dataclass(frozen=True)
class BootstrapEvent:
    """Something the CLI may show while a bootstrap runs (the library itself never prints).

    kind: account-start | result | warning | account-done | account-failed | account-resumed
    """

    kind: str
    account: str | None
    message: str
    result: Result | None = None


EventCallback = Callable[[BootstrapEvent], None]


@dataclass(frozen=True)
class BootstrapConfig:
    """Every refarch.toml section bootstrap reads, validated up front (before any AWS call)."""

    backend: BackendConfig = field(default_factory=BackendConfig)
    keypairs: KeyPairsConfig = field(default_factory=KeyPairsConfig)
    certificates: CertsConfig = field(default_factory=CertsConfig)
    kms_admin: KmsAdminConfig = field(default_factory=KmsAdminConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    parallelism: int = 4

    @classmethod
    def from_settings(cls, settings: Settings) -> BootstrapConfig:
        section = Section(settings, "bootstrap", ("parallelism", "file"))  # file: see declared.py
        return cls(
            backend=BackendConfig.from_settings(settings),
            keypairs=KeyPairsConfig.from_settings(settings),
            certificates=CertsConfig.from_settings(settings),
            kms_admin=KmsAdminConfig.from_settings(settings),
            secrets=SecretsConfig.from_settings(settings),
            dns=DnsConfig.from_settings(settings),
            parallelism=section.integer("parallelism", 4, minimum=1),
        )


@dataclass(frozen=True)
class AccountWork:
    """What one account is asked for."""

    account: Account
    tier: int
    regions: tuple[str, ...]
    buckets: tuple[BucketSpec, ...]
    tables: tuple[TableSpec, ...]
    digest: str


def bootstrap(
    repo: Repo,
    settings: Settings,
    *,
    accounts: Iterable[str] | None = None,
    dry_run: bool = False,
    sessions: AwsSessions | None = None,
    keys_dir: Path | None = None,
    on_event: EventCallback | None = None,
    only: Iterable[str] | None = None,
) -> BootstrapRecord:
    """Make what the accounts need before the first apply, and return the record of it.

    What to make comes from the repo: state backends from the units' `remote_state`, the rest
    from `bootstrap.hcl` (the file the units read the same names from) and refarch.toml on
    top; nothing is made that neither asks for. `only` limits the run to some PROVISIONERS.

    Accounts go tier by tier (Settings.tier_of); the accounts of one tier run in parallel.
    Everything is checked and only what differs is changed, so a second run changes nothing.
    The record is written to `<repo>/.refarch/bootstrap.json` after every resource (not in a
    dry run); when the previous run failed or was killed, accounts it finished are not done
    again unless what they are asked for changed. Raises BootstrapFailed when an account
    fails (the rest of its tier is let finish, later tiers are not started).

    Holds the repo lock (runner.repo_lock) while it works, not in a dry run: an apply,
    destroy or bootstrap already running on the repo makes it raise RepoBusy at once.
    """
    run = _Bootstrap(
        repo,
        with_declared(repo.root, settings),
        dry_run=dry_run,
        sessions=sessions,
        keys_dir=keys_dir,
        on_event=on_event,
        only=parse_only(only),
    )
    if dry_run:
        return run.run(accounts)
    with repo_lock(repo.root, "refarch bootstrap") as lock:
        if lock.notice:
            run.emit("warning", None, lock.notice)
        return run.run(accounts)


@dataclass(frozen=True)
class BootstrapRequest:
    """What `refarch bootstrap DIR` is asked, one field per flag."""

    directory: str | Path
    accounts: tuple[str, ...] | None = None  # None: every account
    dry_run: bool = False
    only: tuple[str, ...] | None = None  # some PROVISIONERS (None: all)
    endpoint_url: str | None = None
    profile: str | None = None
    keys_dir: Path | None = None  # private keys here (0700), not in Secrets Manager
    report: Path | None = None  # the record also written to this JSON file


def run_bootstrap(
    request: BootstrapRequest, *, on_event: EventCallback | None = None, sessions: AwsSessions | None = None
) -> BootstrapRecord:
    """What `refarch bootstrap DIR` does: settings with the request's overrides, the repo,
    `bootstrap`, and the record written to `request.report` when asked."""
    settings = load_settings(Path(request.directory)).with_overrides(
        endpoint_url=request.endpoint_url, profile=request.profile
    )
    record = bootstrap(
        load_repo(request.directory, settings=settings),
        settings,
        accounts=request.accounts,
        dry_run=request.dry_run,
        sessions=sessions,
        keys_dir=request.keys_dir,
        on_event=on_event,
        only=request.only,
    )
    if request.report is not None:
        write_record(request.report, record)
    return record


def parse_only(names: Iterable[str] | None) -> tuple[str, ...]:
    """The provisioners to run, in their order: all of them, or the named ones."""
    if names is None:
        return PROVISIONERS
    wanted = {n.strip() for n in names if n.strip()}
    unknown = sorted(wanted - set(PROVISIONERS))
    if unknown or not wanted:
        raise UsageError(
            f"unknown provisioner(s): {', '.join(unknown) or '(none given)'}",
            hint=f"--only takes a comma-separated subset of: {', '.join(PROVISIONERS)}",
        )
    return tuple(p for p in PROVISIONERS if p in wanted)


class _Bootstrap:
    """The state of one bootstrap run (shared by the account threads under a lock)."""

    def __init__(
        self,
        repo: Repo,
        settings: Settings,
        *,
        dry_run: bool,
        sessions: AwsSessions | None,
        keys_dir: Path | None,
        on_event: EventCallback | None,
        only: tuple[str, ...] = PROVISIONERS,
    ) -> None:
        self.repo = repo
        self.only = only
        self.settings = settings
        self.config = BootstrapConfig.from_settings(settings)
        self.dry_run = dry_run
        self.sessions = sessions or AwsSessions(settings)
        self.keys_dir = Path(keys_dir) if keys_dir else None
        self.on_event = on_event
        self.path = repo.root / RECORD_PATH
        self.lock = threading.RLock()
        self.ca_lock = threading.Lock()
        self.ca: tuple[CertMaterial | None, Result] | None = None
        self.extra_admins: list[str] = []
        self.record = BootstrapRecord(
            dry_run=dry_run, endpoint_url=settings.endpoint_url, status="dry-run" if dry_run else "running"
        )

    # -- the run ---------------------------------------------------------------------------
    def run(self, names: Iterable[str] | None) -> BootstrapRecord:
        selected = self._select(names)
        work = self._work(selected)
        previous = read_record(self.path)
        if previous is not None:
            self.record.accounts = dict(previous.accounts)
        self._warn_tls(work)
        self._check_admins_reachable(selected)
        # "running": the previous run was killed (Ctrl-C, a crash) before it could say failed.
        resumable = previous is not None and previous.status in ("failed", "running")
        tiers: dict[int, list[AccountWork]] = {}
        for item in work:
            old = self.record.accounts.get(item.account.name)
            if resumable and old and old.status == "done" and old.digest == item.digest:
                self.record.resumed.append(item.account.name)
                self.emit(
                    "account-resumed",
                    item.account.name,
                    f"{item.account.name}: done by the failed run before, skipped",
                )
                continue
            tiers.setdefault(item.tier, []).append(item)
        self._save()
        for tier in sorted(tiers):
            failures = self._run_tier(tiers[tier])
            if failures:
                self.record.status = "failed"
                self.record.finished_at = now()
                self._outputs()
                self._save()
                raise BootstrapFailed(failures, None if self.dry_run else str(self.path))
        self._outputs()
        admins = self.record.outputs.get("cmk_administrator_iam_arns", [])
        if self.wants_kms_admin:
            try:
                require_admins(admins)
            except ProvisionError:
                self.record.status = "failed"
                self._save()
                raise
        self.record.status = "dry-run" if self.dry_run else "done"
        self.record.finished_at = now()
        self._save()
        return self.record

    def _run_tier(self, items: list[AccountWork]) -> dict[str, str]:
        if len(items) == 1:
            outcomes = [self._run_account(items[0])]
        else:
            workers = min(self.config.parallelism, len(items))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="refarch-bootstrap") as pool:
                outcomes = list(pool.map(self._run_account, items))
        return {name: error for name, error in outcomes if error}

    def _run_account(self, item: AccountWork) -> tuple[str, str | None]:
        account = item.account
        if account.id is None:  # _work() only passes accounts with an id
            raise ConfigError(f"account {account.name} has no id")
        entry = AccountRecord(account.name, account.id, item.tier, status="running", digest=item.digest)
        with self.lock:
            entry.results.extend(self._kept(self.record.accounts.get(account.name)))
            self.record.accounts[account.name] = entry
            self.record.ran.append(account.name)
        self.emit(
            "account-start",
            account.name,
            f"{account.name} ({account.id}, tier {item.tier}, {', '.join(item.regions)})",
        )
        try:
            _AccountRun(self, item, entry).provision()
        except (RefarchError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            return self._failed(entry, str(exc).splitlines()[0])
        except Exception as exc:  # a bug must still leave the record of what was made
            return self._failed(entry, f"{type(exc).__name__}: {exc}")
        with self.lock:
            entry.status = "done"
            entry.finished_at = now()
            self._save()
        self.emit("account-done", account.name, f"{account.name}: {len(entry.changes)} change(s)")
        return account.name, None

    def _kept(self, old: AccountRecord | None) -> list[Result]:
        """What an `--only` run keeps of the account's previous record: the results of the
        provisioners it does not run (as found, not as changes of this run)."""
        if old is None or self.only == PROVISIONERS or self.dry_run:
            return []
        return [
            replace(r, status="exists", changes=(), warnings=())
            for r in old.results
            if PROVISIONER_OF.get(r.kind) not in self.only
        ]

    def _failed(self, entry: AccountRecord, error: str) -> tuple[str, str]:
        with self.lock:
            entry.status = "failed"
            entry.error = error
            entry.finished_at = now()
            self._save()
        self.emit("account-failed", entry.name, f"{entry.name}: {error}")
        return entry.name, error

    # -- planning --------------------------------------------------------------------------
    def _select(self, names: Iterable[str] | None) -> list[Account]:
        known = {a.name: a for a in self.repo.accounts}
        if names is None:
            chosen = list(known.values())
        else:
            wanted = list(dict.fromkeys(names))
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise UsageError(
                    f"unknown account(s): {', '.join(unknown)}",
                    hint=f"accounts in the repo: {', '.join(sorted(known))}",
                )
            chosen = [known[n] for n in wanted]
        for account in chosen:
            if not account.id:
                raise ConfigError(
                    f"account {account.name} has no account id",
                    path=self.repo.root / account.name / "account.hcl",
                    hint="set aws_account_id in the account's account.hcl",
                )
        return sorted(chosen, key=lambda a: (self.settings.tier_of(a.name), a.name))

    def _work(self, accounts: list[Account]) -> list[AccountWork]:
        buckets, tables = specs_from_units(
            self.repo.units.values(),
            self.config.backend,
            root=self.repo.root,
            default_region=self.settings.region,
            endpoint_url=self.settings.endpoint_url,
        )
        work = []
        for account in accounts:
            own_buckets = tuple(b for b in buckets if b.account_id == account.id)
            own_tables = tuple(t for t in tables if t.account_id == account.id)
            regions = {
                u.region or self.settings.region
                for u in self.repo.units.values()
                if u.account == account.name
            }
            regions |= set(account.regions) | {b.region for b in own_buckets}
            regions |= {t.region for t in own_tables}
            ordered = tuple(sorted(regions or {self.settings.region}))
            digest = hashlib.sha256(
                json.dumps(
                    {
                        "regions": ordered,
                        "buckets": [asdict(b) for b in own_buckets],
                        "tables": [asdict(t) for t in own_tables],
                        "config": asdict(self.config),
                        "keys_dir": str(self.keys_dir),
                        "only": self.only,
                        "endpoint": self.settings.endpoint_url,
                    },
                    sort_keys=True,
                    default=str,
                ).encode()
            ).hexdigest()
            work.append(
                AccountWork(
                    account, self.settings.tier_of(account.name), ordered, own_buckets, own_tables, digest
                )
            )
        return work

    def _warn_tls(self, work: list[AccountWork]) -> None:
        notes = {
            b.tls_note
            for item in work
            for b in item.buckets
            if b.tls_note.startswith("not applied: the endpoint")
        }
        for note in sorted(notes):
            message = f"TLS-only bucket policy {note}"
            self.record.warnings.append(message)
            self.emit("warning", None, message)

    # -- shared pieces ---------------------------------------------------------------------
    def named_account(self, name: str | None, fallback: str) -> Account:
        """The account `name` (config) or, by default, "security" or the first by tier."""
        known = {a.name: a for a in self.repo.accounts}
        if name is not None:
            if name not in known:
                raise ConfigError(
                    f"{fallback} names account {name!r}, which is not in the repo",
                    path=self.settings.path or "refarch.toml",
                )
            return known[name]
        if "security" in known:
            return known["security"]
        return min(known.values(), key=lambda a: (self.settings.tier_of(a.name), a.name))

    def kms_account(self) -> Account:
        return self.named_account(self.config.kms_admin.account, "[kms_admin] account")

    def ca_account(self) -> Account:
        return self.named_account(self.config.certificates.ca_account, "[certificates] ca_account")

    @property
    def wants_kms_admin(self) -> bool:
        """The repo asks for a KMS administrator and this run makes or checks it."""
        return "kms" in self.only and self.config.kms_admin.wanted

    def _check_admins_reachable(self, selected: list[Account]) -> None:
        """Refuse before changing anything when no KMS administrator would exist at the end."""
        kms = self.config.kms_admin
        if not self.wants_kms_admin or kms.user is None or not kms.create or not self.repo.accounts:
            return
        account = self.kms_account()
        if account in selected:
            return
        iam = self.sessions.client("iam", account.id, self.settings.region, account_name=account.name)
        arn = find_kms_admin(iam, kms.user)
        if arn is None and not kms.arns:
            raise ProvisionError(
                f"no KMS administrator exists: user {kms.user} is not in account "
                f"{account.name}, and that account is not being bootstrapped",
                hint=f"bootstrap {account.name} first, or list admins in [kms_admin] arns",
            )
        if arn:
            self.extra_admins.append(arn)

    def store(self, account: Account, client: Callable[..., Any]) -> SecretStore:
        if self.keys_dir is not None:
            return DirectoryStore(key_store_dir(self.keys_dir, account.name, create=not self.dry_run))
        return SecretsManagerStore(client("secretsmanager"), self.config.secrets.prefix)

    def private_ca(self, add: Callable[[Result], None]) -> CertMaterial | None:
        """The architecture's CA, made once in the CA account by whichever account needs it
        first; its result goes to that account's record."""
        with self.ca_lock:
            if self.ca is None:
                account = self.ca_account()

                def client(service: str) -> Any:
                    return self.sessions.client(
                        service, account.id, self.settings.region, account_name=account.name
                    )

                store = self.store(account, client)
                self.ca = ensure_private_ca(
                    store,
                    account_id=account.id or "",
                    common_name=self.config.certificates.ca_name,
                    dry_run=self.dry_run,
                )
                add(self.ca[1])
            return self.ca[0]

    def add(self, entry: AccountRecord, result: Result) -> None:
        with self.lock:
            entry.results.append(result)
            self._save()
        verb = "would be " + result.status if result.dry_run and result.changes else result.status
        self.emit("result", entry.name, f"{result.kind} {result.name}: {verb}", result)
        for warning in result.warnings:
            self.emit("warning", entry.name, warning, result)

    def _outputs(self) -> None:
        results = self.record.results
        admins = [*self.config.kms_admin.arns, *self.extra_admins]
        admins += [r.ids["arn"] for r in results if r.kind == "kms-admin" and "arn" in r.ids]
        self.record.outputs["cmk_administrator_iam_arns"] = sorted(set(admins))
        self.record.outputs["dns_imports"] = [
            {"domain": r.name, "account_id": r.account_id, **r.ids}
            for r in results
            if r.kind == "hosted-zone"
        ]
        cas = [r for r in results if r.kind == "private-ca"]
        if cas:
            self.record.outputs["private_ca"] = {"account_id": cas[-1].account_id, **cas[-1].ids}

    def _save(self) -> None:
        if self.dry_run:
            return
        with self.lock:
            write_record(self.path, self.record)

    def emit(self, kind: str, account: str | None, message: str, result: Result | None = None) -> None:
        if self.on_event is not None:
            self.on_event(BootstrapEvent(kind, account, message, result))


class _AccountRun:
    """The provisioners of one account, in order, through the account's role."""

    def __init__(self, run: _Bootstrap, item: AccountWork, entry: AccountRecord) -> None:
        self.run = run
        self.item = item
        self.entry = entry
        self.account = item.account
        self.id = item.account.id or ""
        self.dry_run = run.dry_run
        self.home = run.settings.region
        self.config = run.config
        self._clients: dict[tuple[str, str], Any] = {}
        self._zones: dict[str, str] | None = None

    def client(self, service: str, region: str | None = None) -> Any:
        """One client per service and region for the whole account (making one is slow)."""
        key = (service, region or self.home)
        if key not in self._clients:
            self._clients[key] = self.run.sessions.client(
                service, self.id, key[1], account_name=self.account.name
            )
        return self._clients[key]

    def add(self, result: Result) -> None:
        self.run.add(self.entry, result)

    def provision(self) -> None:
        sessions = self.run.sessions
        session = sessions.session(self.id, self.account.name, self.home)
        sessions.check_account(f"the bootstrap of account {self.account.name}", self.id, session)
        steps: dict[str, Callable[[], None]] = {
            "kms": self.kms_admin,
            "backend": self.backend,
            "ledger": self.ledger,
            "passwords": self.passwords,
            "keypairs": self.keypairs,
            "certs": self.certificates,
            "dns": self.dns,
            "vpn": lambda: provision_vpn_pki(self),
        }
        for name in self.run.only:
            steps[name]()

    def store(self) -> SecretStore:
        return self.run.store(self.account, self.client)

    def kms_admin(self) -> None:
        kms = self.config.kms_admin
        if kms.makes_user and kms.user and self.run.kms_account().name == self.account.name:
            self.add(ensure_kms_admin(self.client("iam"), kms.user, account_id=self.id, dry_run=self.dry_run))

    def backend(self) -> None:
        if self.item.buckets:
            owned = owned_buckets(self.client("s3"))
            for spec in self.item.buckets:
                self.add(
                    ensure_bucket(self.client("s3", spec.region), spec, owned=owned, dry_run=self.dry_run)
                )
        for table in self.item.tables:
            self.add(ensure_lock_table(self.client("dynamodb", table.region), table, dry_run=self.dry_run))

    def ledger(self) -> None:
        """The shared ledger's table and log bucket, in the ledger account (`[ledger]`)."""
        config = LedgerConfig.from_settings(self.run.settings)
        if not config.shared:
            return
        _, account_id = ledger_account(self.run.repo, config, self.run.settings)
        if account_id != self.id:
            return
        place = ledger_place(self.run.repo, self.run.settings)
        backend = self.config.backend
        spec = BucketSpec(
            place.bucket,
            place.region,
            self.id,
            enforce_tls=backend.tls_policy_applies(self.run.settings.endpoint_url),
            tags=backend.tags,
            tls_note="" if backend.tls_policy_applies(self.run.settings.endpoint_url) else "not applied",
        )
        for result in ensure_ledger(
            self.client("dynamodb", place.region),
            self.client("s3", place.region),
            table=place.table,
            bucket=spec,
            dry_run=self.dry_run,
        ):
            self.add(result)

    def passwords(self) -> None:
        secrets = self.config.secrets
        if secrets.accounts is not None and self.account.name not in secrets.accounts:
            return
        for region in self.item.regions:
            for name in secrets.passwords:
                self.add(
                    ensure_password(
                        self.client("secretsmanager", region),
                        name,
                        account_id=self.id,
                        region=region,
                        length=secrets.length,
                        prefix=secrets.prefix,
                        dry_run=self.dry_run,
                    )
                )

    def keypairs(self) -> None:
        config = self.config.keypairs
        store = self.store() if config.names else None
        for name in config.names:
            assert store is not None
            public, result = ensure_key_material(
                store,
                name,
                account_id=self.id,
                key_type=config.key_type,
                rsa_bits=config.rsa_bits,
                dry_run=self.dry_run,
            )
            self.add(result)
            for region in self.item.regions:
                self.add(
                    ensure_key_pair(
                        self.client("ec2", region),
                        name,
                        public,
                        account_id=self.id,
                        region=region,
                        dry_run=self.dry_run,
                    )
                )

    def certificates(self) -> None:
        certs = self.config.certificates
        listed: dict[str, list[dict[str, Any]]] = {}

        def existing(region: str) -> list[dict[str, Any]]:
            if region not in listed:
                listed[region] = acm_certificates(self.client("acm", region))
            return listed[region]

        wanted = certs.accounts is None or self.account.name in certs.accounts
        if certs.private_names and wanted:
            store = self.store()
            ca = self.run.private_ca(self.add)
            for domain in certs.private_names:
                leaf, result = ensure_leaf(
                    store,
                    ca,
                    domain,
                    account_id=self.id,
                    validity_days=certs.validity_days,
                    dry_run=self.dry_run,
                )
                self.add(result)
                regions = self.item.regions if domain in certs.internal else ()
                if domain in certs.cloudfront:
                    regions = tuple(sorted({*regions, CLOUDFRONT_REGION}))
                for region in regions:
                    self.add(
                        ensure_imported(
                            self.client("acm", region),
                            leaf,
                            ca,
                            domain,
                            account_id=self.id,
                            region=region,
                            existing=existing(region),
                            dry_run=self.dry_run,
                        )
                    )
        if certs.public:
            zones = self.zones()
            for domain in certs.public:
                zone = zone_for(zones, domain)
                if zone is None:
                    continue
                for region in self.item.regions:
                    self.add(
                        ensure_public_certificate(
                            self.client("acm", region),
                            self.client("route53"),
                            domain,
                            zone[1],
                            account_id=self.id,
                            region=region,
                            existing=existing(region),
                            dry_run=self.dry_run,
                        )
                    )

    def zones(self) -> dict[str, str]:
        if self._zones is None:
            self._zones = public_zones(self.client("route53"))
        return self._zones

    def dns(self) -> None:
        dns = self.config.dns
        if not dns.domains or dns.account not in (None, self.account.name):
            return
        zones = self.zones()
        unit = dns.unit or next(
            (
                u.path
                for u in self.run.repo.units.values()
                if u.account == self.account.name and u.path.rsplit("/", 1)[-1] == "route53"
            ),
            None,
        )
        for domain in dns.domains:
            result = find_zone(zones, domain, account_id=self.id, unit=unit, address=dns.address)
            if result is not None:
                self.add(result)
            elif dns.account == self.account.name:
                self.run.emit(
                    "warning",
                    self.account.name,
                    f"no public hosted zone for {domain} in {self.account.name}: "
                    "the route53 unit will create it",
                )
