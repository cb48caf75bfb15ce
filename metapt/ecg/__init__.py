"""ECG (PTB-XL) data: synthetic default and the real PhysioNet path."""
