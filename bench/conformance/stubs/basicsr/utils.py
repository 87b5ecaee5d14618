"""basicsr's img2tensor (HWC numpy, BGR -> RGB for 3 channels, -> CHW float tensor) and tensor2img (the reverse,
clamped to [0, 1] and scaled to uint8), as far as the official code calls them."""
import cv2
import numpy as np
import torch


def img2tensor(imgs, bgr2rgb=True, float32=True):
    def one(img):
        if img.shape[2] == 3 and bgr2rgb:
            img = cv2.cvtColor(img.astype(np.float32) if img.dtype == np.float64 else img, cv2.COLOR_BGR2RGB)
        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return t.float() if float32 else t
    return [one(i) for i in imgs] if isinstance(imgs, list) else one(imgs)


def tensor2img(tensor, rgb2bgr=True, out_type=np.uint8, min_max=(0, 1)):
    def one(t):
        t = t.squeeze(0).float().detach().cpu().clamp(*min_max)
        a = ((t - min_max[0]) / (min_max[1] - min_max[0])).numpy()
        if a.ndim == 3:
            a = a.transpose(1, 2, 0)
            a = a[..., 0] if a.shape[2] == 1 else (cv2.cvtColor(a, cv2.COLOR_RGB2BGR) if rgb2bgr else a)
        return (a * 255.0).round().astype(out_type) if out_type == np.uint8 else a.astype(out_type)
    return [one(t) for t in tensor] if isinstance(tensor, list) else one(tensor)
