/**
 * How img2img's shape problems name its arrays z, c and uncond: as the library's arguments ("img2img: c has shape
 * […] …"), or as the fields of the request that held them ("body.c: has shape […] …"), so that a service's client
 * reads the names it sent. The check itself is one (Diffusion.checkImg2ImgShapes), whoever names the arrays.
 */
export type Img2ImgArray = 'z' | 'c' | 'uncond';

export interface Img2ImgNames {
  /** The array as a message starting with it names it ("img2img z: expected rank 4 …", "body.z: …"). */
  label(k: Img2ImgArray): string;
  /** The array as another array's problem cites it ("… but z has 2 images", "… but body.z has 2 images"). */
  cite(k: Img2ImgArray): string;
  /** The message of a problem with the array; `text` goes on from its name ("has shape [1, 10, 32] but …"). */
  problem(k: Img2ImgArray, text: string): string;
}

/** img2img's own argument names (Diffusion.img2img's errors). */
export const IMG2IMG_ARGUMENTS: Img2ImgNames = {
  label: (k) => `img2img ${k}`,
  cite: (k) => k,
  problem: (k, text) => `img2img: ${k} ${text}`,
};

/** The names of fields under `prefix` ('body.': a request's body.z, body.c, body.uncond). */
export function img2imgFields(prefix: string): Img2ImgNames {
  return {
    label: (k) => `${prefix}${k}`,
    cite: (k) => `${prefix}${k}`,
    problem: (k, text) => `${prefix}${k}: ${text}`,
  };
}
