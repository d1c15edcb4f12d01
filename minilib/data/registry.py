"""Dataset registry: where each file lives under the data root and how to check it.

Every file the loaders read is listed here with a SHA-256, so a loader never uses a file it cannot vouch for.
*What* is hashed depends on the format, chosen so that any faithful copy passes and any changed pixel fails:

* IDX ``.gz`` (MNIST, Fashion-MNIST): the SHA-256 of the **decompressed** bytes (``checksum="gunzip"``).
  The ``.gz`` bytes change whenever a file is recompressed (gzip level, header mtime, Debian's repack), while the
  IDX payload does not. MNIST values are from the data folder's ``README.md`` §1 (and match the canonical MD5s there);
  Fashion-MNIST values were computed with ``gzip`` + ``hashlib`` from the data folder's ``fashion-mnist/`` after checking
  that the decompressed MD5s equal the canonical ones listed in that README.
* CIFAR-10 ``.npz``: the SHA-256 of each member array's raw bytes, ``sha256(arr.tobytes())`` (``checksum="arrays"``),
  plus its shape and dtype. The whole-file SHA-256 would tie us to one zip container: the shared copy uses LZMA members,
  and the README itself recommends re-saving with ``np.savez_compressed`` to load ~7x faster, which changes every file
  byte but no array byte. Hashing the arrays costs nothing extra because the loader decompresses them anyway.
  ``x`` values are from the README; ``y`` values were computed from the shared files after their whole-file SHA-256
  matched ``SHA256SUMS`` and their ``x`` hashes matched the README.
* SR PNGs (Set5, Set14, T91): the SHA-256 of the whole file (``checksum="file"``), from the data folder's ``SHA256SUMS``.
  PNG bytes are what was published (Set5/Set14) or what the dataset README documents (T91, re-encoded from BMP).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

# --------------------------------------------------------------------------------------------------
# Errors (defined here, the bottom module, so every other module can raise and catch them)
# --------------------------------------------------------------------------------------------------


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is missing. The message says which file, the data root, and how to get the file."""


class DatasetIntegrityError(ValueError):
    """A dataset file exists but is not the expected content (checksum, gzip stream, header, shape).

    Attributes ``path``, ``expected`` and ``actual`` (SHA-256 hex strings, or None for structural errors)
    let callers and tests inspect what went wrong without parsing the message.
    """

    def __init__(self, message: str, *, path: Path | str | None = None, expected: str | None = None,
                 actual: str | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.expected = expected
        self.actual = actual


class DownloadUnavailableError(ValueError):
    """``download`` was asked for a dataset that has no public source in the format minilib reads."""


class DownloadError(OSError):
    """Every mirror failed to deliver a file (network error, HTTP error); the message lists each URL and error."""


# --------------------------------------------------------------------------------------------------
# Data root
# --------------------------------------------------------------------------------------------------

ENV_VAR = "MINILIB_DATA"
DEFAULT_ROOT = "data"


def data_root() -> Path:
    """Return the data root: ``$MINILIB_DATA`` if set and non-empty, else ``./data``, as an absolute path.

    Relative values are resolved against the current working directory at call time (CI uses
    ``MINILIB_DATA=../shared/data`` from the repository root); returning an absolute path makes error messages
    show exactly which folder was searched.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value or DEFAULT_ROOT).expanduser().resolve()


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` as an absolute Path, or :func:`data_root` when ``root`` is None."""
    return data_root() if root is None else Path(root).expanduser().resolve()


# --------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------

CHECKSUM_KINDS = ("gunzip", "file", "arrays")


@dataclass(frozen=True)
class ArraySpec:
    """Expected shape, dtype (numpy dtype string, e.g. ``"uint8"``, ``"<i8"``) and SHA-256 of ``arr.tobytes()``."""

    shape: tuple[int, ...]
    dtype: str
    sha256: str


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    ``relpath`` is relative to the data root (POSIX separators). ``checksum`` says what ``sha256`` covers:
    ``"gunzip"`` = the decompressed gzip payload, ``"file"`` = the file bytes, ``"arrays"`` = each npz member's raw
    bytes, in which case ``arrays`` maps member name -> :class:`ArraySpec` and ``sha256`` is None.
    """

    relpath: str
    checksum: str
    sha256: str | None = None
    arrays: Mapping[str, ArraySpec] = field(default_factory=dict)

    def __post_init__(self):
        if self.checksum not in CHECKSUM_KINDS:
            raise ValueError(f"checksum={self.checksum!r} must be one of {CHECKSUM_KINDS}")
        if (self.checksum == "arrays") != (self.sha256 is None):
            raise ValueError(f"{self.relpath}: give sha256 for checksum={self.checksum!r} files, arrays for npz files")

    @property
    def filename(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its files (``role -> FileSpec``), public mirrors, and how to get it if there are none.

    ``mirrors`` are base URLs tried in order; a file's URL is ``mirror + FileSpec.filename``. Empty ``mirrors``
    means no public source publishes the files in this format, and ``how_to_get`` explains where to place them.
    """

    name: str
    title: str
    folder: str
    files: Mapping[str, FileSpec]
    mirrors: tuple[str, ...] = ()
    how_to_get: str = ""
    note: str = ""

    @property
    def downloadable(self) -> bool:
        return bool(self.mirrors)

    def how_to_get_at(self, root: Path) -> str:
        """``how_to_get`` with the actual data root filled in."""
        return self.how_to_get.replace("<data root>", str(root))

    def fix_command(self) -> str:
        """The shell command that fetches this dataset (only meaningful when downloadable)."""
        return f"python -m minilib.data download {self.name}"


def _idx_files(folder: str, sha256: Mapping[str, str]) -> dict[str, FileSpec]:
    # Role names "train-images" etc. mirror the standard IDX file names, which are the same for both datasets.
    names = {
        "train-images": "train-images-idx3-ubyte.gz",
        "train-labels": "train-labels-idx1-ubyte.gz",
        "test-images": "t10k-images-idx3-ubyte.gz",
        "test-labels": "t10k-labels-idx1-ubyte.gz",
    }
    return {role: FileSpec(f"{folder}/{fname}", "gunzip", sha256[role]) for role, fname in names.items()}


def _png_files(folder: str, sha256: Mapping[str, str]) -> dict[str, FileSpec]:
    return {stem: FileSpec(f"{folder}/{stem}.png", "file", digest) for stem, digest in sha256.items()}


# SHA-256 of the decompressed IDX content. MNIST: the data folder's README.md §1.
_MNIST_GUNZIP_SHA256 = {
    "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Fashion-MNIST: computed from the data folder's fashion-mnist/ (decompressed MD5s equal the canonical ones in its README).
_FASHION_MNIST_GUNZIP_SHA256 = {
    "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# CIFAR-10 (JPEG-decoded copy): x hashes from the data folder's README.md §3, y hashes computed from the shared files.
_CIFAR10_FILES = {
    "train": FileSpec("cifar10/cifar10_train.npz", "arrays", arrays={
        "x": ArraySpec((50000, 32, 32, 3), "uint8", "5aaf8a2cf2e577ff4dbb15e4f368840fab5aca1812bcc69682005f8dc661d466"),
        "y": ArraySpec((50000,), "<i8", "f5cfe00b0f00968c0cc5ff3b1d2de51b10e33efa277c2986f4e0fa63e58c9f4f"),
    }),
    "test": FileSpec("cifar10/cifar10_test.npz", "arrays", arrays={
        "x": ArraySpec((10000, 32, 32, 3), "uint8", "5a6aa8185204d80b65d3dfb540696dadd5f10d185ded226a96665d3e0fc6259f"),
        "y": ArraySpec((10000,), "<i8", "c5575395e636cadcdfe5764ffc8d56f56d234a4dc687096f8fc2d975dd6a5597"),
    }),
}

# SR images: whole-file SHA-256 from the data folder's SHA256SUMS. (T91's t36 and t65 are byte-identical files.)
_SET5_PNG_SHA256 = {
    "baby": "cb85956d68f708a1030c790d143cbcd108f5ac5988d3349180cdcb54dd80597d",
    "bird": "5dcf863f7c3802e68fbb0fca2ec351052a1f97a4db613e510dbd105cee9a6a32",
    "butterfly": "487d841c9dbc46c7ab496c319ec1f13268de7ea7e02f94ae18781ca86a5abd0d",
    "head": "f524c1ce41641c1cf269a20c4dfbe965e07e471d609abc19dfadfb71037cc873",
    "woman": "f276625a222b9ce18d18d86e1ec603fea50427b7c0a2927b3750b1bb86a07b83",
}

_SET14_PNG_SHA256 = {
    "baboon": "bf6fb300762bcbe1340098b4309c179b2007c3bb81b7afde18c38a3ae70ac8a9",
    "barbara": "1ea77fe82564b55230d7c2439bef5738d18a4624280e263be48484c002b6280b",
    "bridge": "c0eb089ad3dacfa96ee79d9c112216265b36aaba205e06f80846b03b21884a53",
    "coastguard": "fc6c2acd5ca2116f37b1b38c0c2908ce64e2e414086fb43349c246d410669da6",
    "comic": "49ccc5e33deff33992b929b07549d803f176e01bf9f41b73de6b15437bc2280d",
    "face": "5cc7a1c5c013b46a7ab4850cb709974d26971550106375a36fd641c725bce9aa",
    "flowers": "609e9fc9ffd6c9689c6200a11e057c19e6e4ec5d385fe0d6eb59a7b24f327894",
    "foreman": "af4ad4771fd2def0a09ba0011e67225f10ad1590e85b48aab4f6820fa932b1ed",
    "lenna": "72d70a7a5051c6193f02b03decb6c7b1d336abe2d024f441a2384acaee84af55",
    "man": "ba7a7e45f690a542fc32fdefe1e04e0128d1cdf8c3817c1ee7b0300961636bfe",
    "monarch": "ed96187293a37c931250d137553928e1a9a63e31296b82a4968dde63683bb101",
    "pepper": "46339a09e2ae31d2f0513642607586a00d82feaf48dc3cc770e42be5684a11a9",
    "ppt3": "a9276fa3f7fbd4257ccede14d1004f836c10fcc2bac174b2428f43fe899b8f9d",
    "zebra": "af146347f19b1ab9f1da26113a88505d600e2dcb84bf91bb8e2013691e79bcc7",
}

_T91_PNG_SHA256 = {
    "t1": "5ce81aae0b6d9a6ba7e049fdd3f62268a27321170b68191067f078411a1d5747",
    "t2": "1236664e7f43157d073057ad8067631a9a3749632e5fb784227d7ef7294df56a",
    "t3": "223b5dcf27906d1b9612fe5e1de7c95818e11cf52cbae5a12f040b09bb21fb05",
    "t4": "f6d71255ef12ae1c97c715840c01abc4d1e3ace8c02858689d4396ce08d4761f",
    "t5": "ae430c0b4e92cadcfdc4d13b717ebe6a05f4a056a979240e15211d2be013f0c1",
    "t6": "6c31d499770fa773d2a7b3acadbd2b02040738b1078647ffb66af08bb96a95e6",
    "t7": "bf984f3783f6822ab1ec69b8e50fa4123ebb4f226b3f8b79f74fbaf87cbfb02a",
    "t8": "700c755b656187cbbc9bf58c0cbf5cc34ff0e30a2fd439ce78057b22d288a0b3",
    "t9": "9dd4e01544fedcbc55a6d021ca347d5cb8f01935ada7c21e3cba0c8b6c16ac2e",
    "t10": "52d319285d8e9841319e0f071d92e428a7b7ca0cc929f758adff9ea19b6f256b",
    "t11": "bd2f40960fdaa042cc3fe76cebe8092276232225459cbf8f0184bd42b2dc0db8",
    "t12": "f25b143c6d68033f3aaff5ae2cd82688abd259ec0a943ae975a1d3e62f750db1",
    "t13": "0ed05e9e6167a6f32a145fed0a7e9c71445f4ff12e1e8a6f71b1a702668f13b7",
    "t14": "6cf65d469f1cdf8b4f3e93ccbcf35692eb63c9cb0c40284aeb7d7d2027920044",
    "t15": "163ef2a47304d18682fc23a3d99c66291d662ba4dcf049be8c3f21b39a032255",
    "t16": "04c539e33398c388aea79fea923386f9b492819c7d0f9baa7d2ef2c8814cf794",
    "t17": "b3d349628202dafa9616b1e789daa84a5cfaa7b01abe7da6542597b1e005ccec",
    "t18": "83e8cdad932de0f9215b6b86362fe2eecc9018101e7a441be9bdb8f425478b88",
    "t19": "69022756587cda9156e021cfdc9f00784a512c8a391c9b9941ab3dd38ef60d30",
    "t20": "3a2a425617be1defda48261688b311070a81da1eb5da9fb9107fd2ab1b53a84e",
    "t21": "def8a2b81f835f6b372196d747be2c23697dfb7a1a3e2243ffbc5926c69dce16",
    "t22": "09afcdd2b3556789178af6f32d88e30e799ce35e0a26061f86606c29b1478ae5",
    "t23": "cd9555bb349873579e8f014b96511023eca205a418f7f10b75b7ec8ba715f5f0",
    "t24": "6530535b93d5b5eb8817596dc835be2dafed4ecf210e12b04edeec3963ca0154",
    "t25": "ee3f290a8e8001789d131dd16db0af70f946539107c966f8b65c929b51dee4dc",
    "t26": "fc047b98681f0de43a09b08252f977e539bc2c00f696b701c94d242a65b375b8",
    "t27": "58a9aa4bf774edfc702ff8136c456abc21c9770f1d09a6e025bab83fcba935e1",
    "t28": "46d9bea69dfde50c7cf0fa42f37155d1e84d03c1a1b3525f840c246903ad7c48",
    "t29": "2732940ba61755b2b0d2a5c5c565f2c3fa3a160a914ff617a7a1113e3cec8dbb",
    "t30": "7dd2de251ec44b41dcf17ecfa7d01228e20f3393786bf696ab945b1b25ea734f",
    "t31": "e3fe8a43843a236943f3a10a35fc39c953975c5902453cfa24b378d0c51ea0f1",
    "t32": "42e8f1f245a1d19eb3391774b1fca6e2b6f5c30ab32dc018cd4039cf59d093a3",
    "t33": "afe24a8b1fcab41d0495a25ca1d423870b371bd3c097158550a56555f2c63186",
    "t34": "21f8785e77629d224acef3d0cc7b93cef3363b85b5ddee4ffb0eea61e7ca928d",
    "t35": "541f1d735e46e8a60d4caccd7e4cc2713ee8d1fdf7479066c2fcf4d7c2f4dfff",
    "t36": "17e3f68f7d08e7583217fd9dd7498d50f557d592282bf5693cc709c76a4ca156",
    "t37": "2646203086279bb60a71ed6325c11999245bad2d5b3e0c354c7e9bedd01bee70",
    "t38": "d756569a41e8a40b11bd67239b7426542767ed05a27788317ae676fc9de9b625",
    "t39": "5295d516b95227abd587d33b1bd33c5914b5dad517506a352a36a1623e643def",
    "t40": "eb507c32a0702b00f155c9d18a0fe311eaf5f70549b783ffff25a500b4195ca7",
    "t42": "3dc2a954c4778079f589be628ba160d2bad7c2199e3053c0c4348f16b2a1e02e",
    "t43": "35ade1388b28b5dee2bb8b694f77947c665a1b7a044d895687cd4d2dfad15fd3",
    "t44": "defd8238911b12de691fb3c86e014fe39d7b902dda42c818449a956a27fad9f1",
    "t45": "a490e23e22d23d2b94827880d222a7a685fde319bc79b793b4d2b4f1a6c15f7b",
    "t46": "4cd09f878b35f35eed51cf65a77fa8ef75501551029a68419e1023cf339f17fa",
    "t47": "19bc0a15164bc78513e46cdc11d0caf8b427ae8ed6ba76c1ddfed04785bd6585",
    "t48": "716e6584a26b658feed7f0bc43765a6f803ef110e626d2af5514ec0ba0b8db79",
    "t49": "8b92f90960aeaa26b54caf09dd9eaace18905a0f1ed13fb329d83f622b58c64a",
    "t50": "7b0dff6c93d436c66e69c761c6938125e8e9ed04c3fcdb0fce32d16de1f9bd9c",
    "t51": "6a2975fd3d9b2ace6d4be832eb3b79eba53bad174b681f6bb270223daa547cc3",
    "t52": "f4fa537906e0c87f8151c863791bf1b254ce6f43fd1c74d8fc8bb5dd59052e6b",
    "t53": "c19ddb1ebc8acbe60c811973b31fc8e118507f385ceddd81a08b6cd259c8356f",
    "t54": "77d0814003710575e01a7113c3e82490833484e4328d555391521349526e628e",
    "t55": "dd8673aa040e8887fbb9af0b4e1f1d78be5495a4ca7bb718ef33a908415eaeda",
    "t56": "094fe63f8d20a7c02e26af7b9c17d0831e0f6b53a8e61d2e15eaf0cc44b47db8",
    "t57": "1c93acfd89a76f23725faa05a77920cec37234202f6a5e7003317f94fcbb774f",
    "t58": "3e7aac2a8cc4a557e7e0043b86b3b8371a1771326e3a57e0d8da450e4ac809c7",
    "t59": "d94e0d754e6b5a20fa44be2feef353bcedd08c07e7a1dd5f4a357ebca8477f00",
    "t60": "255a64bd98cedc884584a8759aecd6dc54ad9eb683d41cdad4b723fe83d002c4",
    "t61": "3772fa39592348a82f98cc56fec76d37b57804ce7d14d07090124d79508b5232",
    "t62": "c878cf378269746e22a162fe07319eea7c0ba5ce55bef9f8e5d541c79b670a5f",
    "t63": "197f685878f533ec14441560dcf893a58148a5ff029cf7ee530b236148726e34",
    "t64": "badf6c8a3fb09f0c4cbb2d37207eb3b203d2c0351589a2fed1ecbc857e6214ad",
    "t65": "17e3f68f7d08e7583217fd9dd7498d50f557d592282bf5693cc709c76a4ca156",
    "t66": "2f4c3a53599753281da850a186e2088d51ef7dbe7b3764c6366fbc15559054ef",
    "tt1": "633f57462fc4c053ae77569b0c89c0781edd74e6f62fec027257b10af2cf43fc",
    "tt2": "13a7af78a4259cf0319cf17478a8d837f0f768de6eb7ddda4d106c0d0234cdab",
    "tt3": "dfa9bf6b5dac590464164aa18caa5814b7b0b2309a36e0e90e70a5be00f3db6f",
    "tt4": "88efe15434c1badb7bc27c5c0df8b4ceb2687b4eb16fec276b62f2e4b53833e6",
    "tt5": "328cfc97b393e5972795fb3c0f26a5cdaefedea1639021fcc25f6d3b9321b000",
    "tt6": "d643cb9571c0e9e26b9fb5253dd507f4f080205e53a674ca7a7a8b721934ecd7",
    "tt7": "8a7ca08d9d97a84edaa8f55f3dab2f3e148239129b325da17423ec0bbd0599e6",
    "tt8": "6ba7c6ea6468019f9b8467ca0dd7659da871bb721477c353e9e1fbd1f02f817a",
    "tt9": "693d9d1d671554980f719b8131b4b6a49344480bfe09c0cc2c96ac3a68dfb9d9",
    "tt10": "c387c9cc464c384e55fdb66edf6990dbedf1f025bf800b32cf923bd4dc87a3a4",
    "tt12": "de14cd1bd39ce93376fb7c812a575ede965444adece9f34511fcd3efd902bcff",
    "tt13": "8b9180e84419efb9c43a05a2265448b879dc0df18febd49f799f9ceb76405017",
    "tt14": "a91ca5406bedfb05d8e97518871b3efa9ad8bb3894cafaa2b624fbfbcfa8dc2b",
    "tt15": "ad9362f89d68a8520306f1a6a8f23f7d196f15fd8a4b35ed9f3c3408b1805005",
    "tt16": "f01205dc59d1259043c9007533511e9eb40dcd70616389d9616b25d0105cbfbc",
    "tt17": "03fe18103d5f3745fc163a3a9c75ee2c03994adb75d026e3d6b5a072140e22a6",
    "tt18": "51ed8e5ab78d7e7cc12bd2617cd24d3567923d31820e30647d7b59e4fb6e724e",
    "tt19": "5416c41f46dbf70cc3cb60ed87aa0bfea48670d088192ade0d131c3c2a8039c0",
    "tt20": "ca8541928ff44e69399af9812e8a42fcd1f057c3cf30516f628e4501cc75011b",
    "tt21": "872e593054045ce4945f3a6b8edbb9eb92cff4b708c3a1c6e25e36f3010bdac1",
    "tt22": "52bf16d771f3eb92dc076bd2ca0122ef5bcecee1bad2bb402ebb89aaf2284700",
    "tt23": "245ed806bc63d8e495e299a3feab18b88b42d1e1f9e9233c5ed474fc202e5497",
    "tt24": "3634e1f1b395682285a226ba5b0e80e99ad62c52157003f9b8b0788df66cab50",
    "tt25": "7d4eb9b3502a5d0888db21692237b6c65ed601bfa67917dd79618a578478bea3",
    "tt26": "defe9305fec7322acfcdd75e1c8c6daa33aa8798a5bee9551195b8b97856ad53",
    "tt27": "f3a5b61a8a6e7f4f846c3e5a14a35102468f0c2ecf94017db47dae453fde74c8",
}

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_PLACE_IT = (
    "No public source publishes {title} in the format minilib reads, so there is no download command. "
    "Put the prepared files under <data root>/{folder}/ (see the data folder's README.md for how they were built), "
    "or set MINILIB_DATA to a folder that already has {folder}/ in it (CI and development use "
    "MINILIB_DATA=../shared/data)."
)

_SR_NOTE = "PNG folder; the public releases are zips/BMPs"


def _sr_spec(name: str, title: str, sha256: Mapping[str, str], note: str) -> DatasetSpec:
    folder = f"sr/{title}"
    return DatasetSpec(name, title, folder, _png_files(folder, sha256),
                       how_to_get=_PLACE_IT.format(title=title, folder=folder), note=note)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist", "MNIST", "mnist", _idx_files("mnist", _MNIST_GUNZIP_SHA256),
        # ossci-datasets is torchvision's mirror; cvdf-datasets is TensorFlow's. Both serve the standard .gz files.
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", "Fashion-MNIST", "fashion-mnist", _idx_files("fashion-mnist", _FASHION_MNIST_GUNZIP_SHA256),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10", "cifar10", _CIFAR10_FILES,
        how_to_get=_PLACE_IT.format(title="CIFAR-10", folder="cifar10")
        + " The official CIFAR-10 release is python pickles with different pixels: this copy is decoded from JPEG.",
        note="LOSSY: decoded from JPEG, not the original pixels; test split sorted by class",
    ),
    "set5": _sr_spec("set5", "Set5", _SET5_PNG_SHA256, _SR_NOTE),
    "set14": _sr_spec("set14", "Set14", _SET14_PNG_SHA256, _SR_NOTE + "; bridge.png is grayscale"),
    "t91": _sr_spec("t91", "T91", _T91_PNG_SHA256, _SR_NOTE + "; PNGs re-encoded losslessly from BMP"),
}


def get_spec(name: str) -> DatasetSpec:
    """Look up a dataset by name, case-insensitively; ``_`` and ``-`` are interchangeable (``Fashion_MNIST`` works).

    Raises ``ValueError`` listing the known names when ``name`` is unknown.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = {"cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset name={name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[key]
