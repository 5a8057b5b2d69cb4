from antenna.product import PRODUCT_ANNOTATIONS, first_annotation, with_product_names


def test_first_non_empty_string_wins():
    assert first_annotation({"ProductName": "", "_productName": "Notes", "prod": "x"},
                            PRODUCT_ANNOTATIONS) == "Notes"
    assert first_annotation({"ProductName": ["x"], "prod": "Chat"}, PRODUCT_ANNOTATIONS) == "Chat"
    assert first_annotation({"Other": "x"}, PRODUCT_ANNOTATIONS) is None


def test_breakpad_names_are_filled_in_without_touching_the_raw_crash():
    raw = {"_productName": "Notes", "_version": "2.1.0", "ProductName": ""}
    view = with_product_names(raw)
    assert view["ProductName"] == "Notes" and view["Version"] == "2.1.0"
    assert raw == {"_productName": "Notes", "_version": "2.1.0", "ProductName": ""}


def test_a_breakpad_crash_is_passed_through_as_is():
    raw = {"ProductName": "MyApp", "Version": "1.0", "prod": "Other"}
    assert with_product_names(raw) is raw
