 BvariableJ€€RCƒ³-C¡	C¸=àBCyCÁ†1Cöf&C²ÖBñ
QC@<yCkqC¨~uC/ÒCVÅC,»BƒáB¶:˜BµBTùC&u	CŞÓ9CÕ?DCUœB|wCG.C“9àBóŠ=C®@C˜"C¶B¥/1CIH3C