"""Explanation methods, one file each, all with the signature ``(model, x, [layer,] target)``."""
from netgaze.methods.ablationcam import ablationcam
from netgaze.methods.augmented import augmented
from netgaze.methods.cam import cam
from netgaze.methods.concepts import Concepts, channel_relevance, concepts
from netgaze.methods.deconvolution import deconvolution
from netgaze.methods.dff import dff
from netgaze.methods.eigen_gradcam import eigen_gradcam
from netgaze.methods.eigencam import eigencam
from netgaze.methods.fem import fem
from netgaze.methods.finercam import finercam
from netgaze.methods.fullgrad import fullgrad
from netgaze.methods.gradcam import gradcam
from netgaze.methods.gradcam_elementwise import gradcam_elementwise
from netgaze.methods.gradcam_pp import gradcam_pp
from netgaze.methods.guided import guided_backprop, guided_gradcam
from netgaze.methods.hirescam import hirescam
from netgaze.methods.input_x_gradient import input_x_gradient
from netgaze.methods.integrated_gradients import integrated_gradients
from netgaze.methods.layercam import layercam
from netgaze.methods.occlusion import occlusion
from netgaze.methods.rise import rise
from netgaze.methods.saliency import saliency
from netgaze.methods.iscam import iscam
from netgaze.methods.kpca_cam import kpca_cam
from netgaze.methods.scorecam import scorecam
from netgaze.methods.shapleycam import shapleycam
from netgaze.methods.smoothgrad import smoothgrad
from netgaze.methods.smoothgradcam_pp import smoothgradcam_pp
from netgaze.methods.sscam import sscam
from netgaze.methods.xgradcam import xgradcam
from netgaze.methods.deeplift import deeplift, deeplift_shap
from netgaze.methods.feature_ablation import feature_ablation
from netgaze.methods.gradient_shap import gradient_shap
from netgaze.methods.kernel_shap import kernel_shap
from netgaze.methods.lime import lime
from netgaze.methods.lrp import lrp

CAM_METHODS = {"gradcam": gradcam, "gradcam_pp": gradcam_pp, "hirescam": hirescam,
               "layercam": layercam, "xgradcam": xgradcam, "scorecam": scorecam,
               "cam": cam, "eigencam": eigencam, "eigen_gradcam": eigen_gradcam,
               "gradcam_elementwise": gradcam_elementwise, "ablationcam": ablationcam, "sscam": sscam,
               "iscam": iscam, "smoothgradcam_pp": smoothgradcam_pp, "fem": fem, "kpca_cam": kpca_cam,
               "finercam": finercam, "shapleycam": shapleycam}
GRADIENT_METHODS = {"saliency": saliency, "guided_backprop": guided_backprop,
                    "smoothgrad": smoothgrad, "integrated_gradients": integrated_gradients,
                    "input_x_gradient": input_x_gradient, "deconvolution": deconvolution, "fullgrad": fullgrad, "lrp": lrp,
                    "deeplift": deeplift, "deeplift_shap": deeplift_shap, "gradient_shap": gradient_shap}
# Input perturbations: occlusion and the superpixel methods give [B, C, H, W] like the gradient methods,
# RISE [B, 1, H, W].
PERTURBATION_METHODS = {"occlusion": occlusion, "rise": rise, "feature_ablation": feature_ablation,
                        "kernel_shap": kernel_shap, "lime": lime}
LAYER_METHODS = {**CAM_METHODS, "guided_gradcam": guided_gradcam}
METHODS = {**LAYER_METHODS, **GRADIENT_METHODS, **PERTURBATION_METHODS}


def method_name(name: str) -> str:
    """A method's registered name from how people type it: ``Kernel-SHAP`` -> ``kernel_shap``."""
    return name.strip().lower().replace("-", "_")


__all__ = ["gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "scorecam", "saliency",
           "guided_backprop", "guided_gradcam", "smoothgrad", "integrated_gradients",
           "cam", "eigencam", "eigen_gradcam", "gradcam_elementwise", "ablationcam", "sscam", "iscam",
           "smoothgradcam_pp", "input_x_gradient", "deconvolution", "occlusion", "rise",
           "fem", "kpca_cam", "finercam", "shapleycam", "fullgrad", "lrp", "augmented", "dff",
           "deeplift", "deeplift_shap", "gradient_shap", "feature_ablation", "kernel_shap", "lime",
           "concepts", "channel_relevance", "Concepts",
           "method_name", "CAM_METHODS", "GRADIENT_METHODS", "PERTURBATION_METHODS", "LAYER_METHODS", "METHODS"]
