import json

from refarch.exec.masking import MASK, Masker, Outputs


def test_registered_values_are_masked_everywhere_in_a_line():
    masker = Masker(["hunter2-long", "s3cr3t-value"])
    line = "connecting with hunter2-long and s3cr3t-value, hunter2-long again"
    assert masker.mask(line) == f"connecting with {MASK} and {MASK}, {MASK} again"


def test_secret_named_inputs_register_their_values_at_any_depth():
    masker = Masker()
    masker.register_inputs(
        {
            "db_password": "pw-123456",
            "name": "app",
            "nested": {"api_token": "tok-abcdef", "list": [{"private_key": "-----BEGIN KEY-----"}]},
            "Client_Secret": ["first-secret", "second-secret"],
        }
    )
    text = "pw-123456 tok-abcdef -----BEGIN KEY----- first-secret second-secret app"
    assert masker.mask(text) == " ".join([MASK] * 5) + " app"


def test_assignments_to_secret_names_are_masked_even_when_not_registered():
    masker = Masker()
    assert masker.mask('  + master_password = "plain"') == f'  + master_password = "{MASK}"'
    assert masker.mask('{"auth_token": "abc", "x": 1}') == f'{{"auth_token": "{MASK}", "x": 1}}'
    assert masker.mask("TG_TOKEN=abc") == f"TG_TOKEN={MASK}"
    # terraform's own redaction is left as is
    assert masker.mask("  + password = (sensitive value)") == "  + password = (sensitive value)"


def test_short_values_are_not_masked_so_output_stays_readable():
    masker = Masker(["on", "1"])
    assert masker.mask("turned on 1 time") == "turned on 1 time"


def test_longest_secret_wins_when_one_contains_another():
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask("abcdefgh") == MASK


def test_mask_data_masks_nested_values_by_value_not_by_key_name():
    masker = Masker(["registered-1"])
    data = {"message": "failed: registered-1", "password_length": 16, "items": ["registered-1", 3]}
    assert masker.mask_data(data) == {"message": f"failed: {MASK}", "password_length": 16, "items": [MASK, 3]}


PEM = "\n".join(
    ["-----BEGIN RSA PRIVATE KEY-----"]
    + [f"MIIEowIBAAKCAQEA{i:02d}" + "x" * 48 for i in range(10)]
    + ["-----END RSA PRIVATE KEY-----"]
)


def test_a_multi_line_secret_is_masked_whole_line_by_line_and_json_escaped():
    assert len(PEM.splitlines()) == 12
    masker = Masker([PEM])
    assert masker.mask(f"key: {PEM}") == f"key: {MASK}"
    for line in PEM.splitlines():
        assert masker.mask(f"      {line}") == f"      {MASK}"
    escaped = json.dumps({"key": PEM})
    assert "MIIE" not in masker.mask(escaped)


def test_numbers_and_flags_assigned_to_secret_looking_names_are_not_secrets():
    masker = Masker()
    assert masker.mask("  + password_length = 16") == "  + password_length = 16"
    assert masker.mask("rotate_token = true") == "rotate_token = true"
    assert masker.mask('  + password = "16"') == f'  + password = "{MASK}"'


def test_sensitive_outputs_are_masked_by_terraforms_flag_whatever_their_name_or_type():
    masker = Masker()
    values = {"db_endpoint": "db.internal", "admin": "pa55-word", "pin": 123456, "password_length": 16}
    outputs = Outputs(values, sensitive=["admin", "pin"])
    masker.register_outputs(outputs)
    assert masker.mask("login with pa55-word at db.internal") == f"login with {MASK} at db.internal"
    assert masker.mask_outputs(outputs) == {
        "db_endpoint": "db.internal",
        "admin": MASK,
        "pin": MASK,
        "password_length": 16,
    }
    masker.register_outputs({"plain": "mapping-without-flags"})  # nothing to register
    assert masker.mask("mapping-without-flags") == "mapping-without-flags"


def test_env_values_used_by_inputs_are_registered_but_plain_variables_are_not():
    masker = Masker()
    env = {"DB_PASS": "from-the-env-1", "HOME": "/home/someone", "UNUSED": "never-in-inputs"}
    masker.register_env_values({"db": {"pass": "from-the-env-1"}, "home": "/home/someone"}, env)
    assert (
        masker.mask("from-the-env-1 /home/someone never-in-inputs") == f"{MASK} /home/someone never-in-inputs"
    )
