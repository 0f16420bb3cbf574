from refarch.exec.masking import MASK, Masker


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


def test_mask_data_masks_nested_values_and_secret_keys():
    masker = Masker(["registered-1"])
    data = {"message": "failed: registered-1", "password": "x", "items": ["registered-1", 3]}
    assert masker.mask_data(data) == {"message": f"failed: {MASK}", "password": MASK, "items": [MASK, 3]}
