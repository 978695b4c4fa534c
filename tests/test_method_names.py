"""A method is found however people type it (kernel-shap, Kernel_SHAP), on the command line and in the explorer."""
import pytest

import netgaze as ng


@pytest.mark.parametrize("typed, name", [("kernel-shap", "kernel_shap"), ("Kernel_SHAP", "kernel_shap"),
                                         ("gradcam-pp", "gradcam_pp"), (" guided-backprop ", "guided_backprop")])
def test_spellings_of_one_method(typed, name):
    from netgaze.serve.requests import check_method as serve_check
    from netgaze.studies.explain_files import check_method

    assert check_method(typed) == name and serve_check(typed) == name
    assert name in ng.methods.METHODS


def test_an_unknown_method_lists_the_close_ones():
    from netgaze.studies.explain_files import check_method

    with pytest.raises(ng.UserError, match="did you mean gradcam_pp"):
        check_method("gradcam-ppp")
